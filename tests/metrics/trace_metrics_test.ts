import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  answerLetter,
  editSimilarity,
  fuzzRatio,
  letterAccuracy,
  matchingBlocks,
  normalizePy150Literals,
  prefixAccuracy,
  rougeLF,
  sari,
  scoreExample,
  scoreTask,
  tokenize13a,
  type TraceMetric,
} from "../../lib/metrics/trace_metrics.ts";

const EPS = 1e-9;

// ---------------------------------------------------------------------------
// accuracy / letter accuracy

Deno.test("prefixAccuracy: stripped prediction must start with the reference", () => {
  assertEquals(prefixAccuracy("B", "B"), 100);
  assertEquals(prefixAccuracy("  B\n", "B"), 100); // whitespace stripped
  assertEquals(prefixAccuracy("B. hawkish", "B"), 100); // trailing text ignored
  assertEquals(prefixAccuracy("12 apples", "12"), 100);
  assertEquals(prefixAccuracy("12", "1"), 100); // a prefix match, however odd, is correct
  assertEquals(prefixAccuracy("1", "12"), 0); // shorter than the reference: wrong
  assertEquals(prefixAccuracy("b", "B"), 0); // case-sensitive
  assertEquals(prefixAccuracy("very positive", "positive"), 0);
  assertEquals(prefixAccuracy("positive", "very positive"), 0);
  // The reference is not stripped.
  assertEquals(prefixAccuracy(" A", " A"), 0);
  // Python whitespace: U+0085 and U+001F are stripped, as by str.strip().
  assertEquals(prefixAccuracy("\u0085\u001fA", "A"), 100);
});

Deno.test("prefixAccuracy: empty prediction or reference scores 0", () => {
  assertEquals(prefixAccuracy("", "A"), 0);
  assertEquals(prefixAccuracy(" \n\t", "A"), 0);
  assertEquals(prefixAccuracy("A", ""), 0);
  assertEquals(prefixAccuracy("", ""), 0);
});

Deno.test("letterAccuracy: first character of the stripped texts (ScienceQA)", () => {
  assertEquals(answerLetter("\nB\nBecause ..."), "B");
  assertEquals(answerLetter("   "), "N/A");
  assertEquals(answerLetter("😀 x"), "😀"); // one code point, not one UTF-16 unit
  assertEquals(letterAccuracy("B\nBecause the Bible ...", "B\nAn allusion is ..."), 100);
  assertEquals(letterAccuracy(" B", "B\nAn allusion is ..."), 100);
  assertEquals(letterAccuracy("A\nAn allusion is ...", "B\nAn allusion is ..."), 0);
  // Only the first character counts: "Answer: B" has letter "A".
  assertEquals(letterAccuracy("Answer: B", "B"), 0);
  assertEquals(letterAccuracy("", "B\n..."), 0);
  assertEquals(letterAccuracy("   ", "   "), 0); // both "N/A": still 0 (empty rule)
  assertEquals(letterAccuracy("B", ""), 0);
});

// ---------------------------------------------------------------------------
// ROUGE-L

Deno.test("rougeLF: hand-computed single-sentence cases", () => {
  // Identical: m = n = 3, overlap 3, P = R = 1 → F = 2/(2 + 1e-8).
  assertAlmostEquals(rougeLF("the cat sat", "the cat sat"), 100 * (2 / (2 + 1e-8)), EPS);
  // Prediction "the cat sat" (m = 3 distinct), reference "the cat sat on the mat"
  // (n = 5 distinct: the cat sat on mat); LCS words {the, cat, sat} → 3.
  // R = 3/3, P = 3/5 → F = 2·0.6/(1.6 + 1e-8).
  assertAlmostEquals(
    rougeLF("the cat sat", "the cat sat on the mat"),
    100 * (1.2 / (1.6 + 1e-8)),
    EPS,
  );
  // No lowercasing: nothing in common.
  assertEquals(rougeLF("The Cat", "the cat"), 0);
  // Distinct-token counting: "the the the" has m = 1, reference "the" n = 1, overlap 1.
  assertAlmostEquals(rougeLF("the the the", "the"), 100 * (2 / (2 + 1e-8)), EPS);
  // Extra whitespace is normalised away.
  assertAlmostEquals(rougeLF("  the\tcat  ", "the cat"), 100 * (2 / (2 + 1e-8)), EPS);
});

Deno.test("rougeLF: sentences split at '.', union LCS across sentence pairs", () => {
  // "3.5 million" → sentences "3", "5 million" (m = 3 tokens); reference "3 5 million" (n = 3).
  // LCS("3" vs ref) = {3}, LCS("5 million" vs ref) = {5, million} → union 3 → F ≈ 1.
  assertAlmostEquals(rougeLF("3.5 million", "3 5 million"), 100 * (2 / (2 + 1e-8)), EPS);
  // Reference "b a. b" → sentences "b a", "b" (n = |{a, b}| = 2); prediction "a b" (m = 2).
  // TRACE calls get_scores(target, prediction), so LCS is reconstructed with
  // x = prediction words [a, b] and y = target words:
  //   vs [b, a]: from (2,2) a≠b… b≠a, table[1][2] = 1 is not > table[2][1] = 1 → go left;
  //              then x[1] = b = y[0] → LCS {b};
  //   vs [b]:    {b}.
  // Union {b} → overlap 1: R = P = 1/2 → F = 2·0.25/(1 + 1e-8) ≈ 50.
  // (With the roles the other way round the union would be {a, b} and F ≈ 100.)
  assertAlmostEquals(rougeLF("a b", "b a. b"), 100 * (0.5 / (1 + 1e-8)), EPS);
});

Deno.test("rougeLF: the appended newline adds an empty token after a final '.'", () => {
  // "A cat." has no newline → "A cat.\n" → pieces "A cat", "\n" → sentences "A cat", "" →
  // tokens {A, cat, ""}: m = 3. Reference "A cat." → "A cat" (the empty piece is dropped): n = 2.
  // Overlap {A, cat} = 2: R = 2/3, P = 1 → F = 2·(2/3)/(5/3 + 1e-8) ≈ 0.8.
  const expected = 100 * (2 * (2 / 3) / (1 + 2 / 3 + 1e-8));
  assertAlmostEquals(rougeLF("A cat.", "A cat."), expected, EPS);
  assertAlmostEquals(rougeLF("A cat.\n", "A cat."), expected, EPS); // already has a newline
  assertAlmostEquals(rougeLF("A cat", "A cat."), 100 * (2 / (2 + 1e-8)), EPS); // no final '.'
  // appendNewline: false is TRACE's metrics.py as is: "A cat." vs "A cat." → m = n = 2 → F ≈ 1.
  assertAlmostEquals(
    rougeLF("A cat.", "A cat.", { appendNewline: false }),
    100 * (2 / (2 + 1e-8)),
    EPS,
  );
  assertAlmostEquals(
    scoreTask("rouge_l", [{ prediction: "A cat.", reference: "A cat." }], {
      rougeAppendNewline: false,
    }),
    100 * (2 / (2 + 1e-8)),
    EPS,
  );
});

Deno.test("rougeLF: empty or sentence-less texts score 0", () => {
  assertEquals(rougeLF("", "A motion."), 0);
  assertEquals(rougeLF("A motion.", ""), 0);
  // Prediction "..." → "...\n" → one sentence "" (token ""), no overlap with "A".
  assertEquals(rougeLF("...", "A"), 0);
  // Reference "..." has no sentence at all (the package would raise ValueError).
  assertEquals(rougeLF("A", "..."), 0);
});

// ---------------------------------------------------------------------------
// Edit similarity

Deno.test("normalizePy150Literals: TRACE's Py150 literal placeholders", () => {
  assertEquals(
    normalizePy150Literals("f ( '<STR_LIT>' , <NUM_LIT:200> , <NUM_LIT> , '<CHAR_LIT>' )"),
    "f ( '' , 200 , 0 , '' )",
  );
  assertEquals(normalizePy150Literals("x = <STR_LIT:utf-8> + <CHAR_LIT:c>"), "x = utf-8 + c");
  // Lazy match up to the first '>' (and across newlines, re.S).
  assertEquals(normalizePy150Literals("<STR_LIT:a\nb> <STR_LIT:<x>>"), "a\nb <x>");
  // `$` in a literal is copied literally.
  assertEquals(normalizePy150Literals("<STR_LIT:$&$1>"), "$&$1");
});

Deno.test("matchingBlocks: difflib documentation examples", () => {
  // Python docs: SequenceMatcher(None, "abxcd", "abcd").get_matching_blocks()
  assertEquals(matchingBlocks("abxcd", "abcd"), [[0, 0, 2], [3, 2, 2], [5, 4, 0]]);
  // Python docs: find_longest_match on " abcd" / "abcd abcd" → Match(a=0, b=4, size=5).
  assertEquals(matchingBlocks(" abcd", "abcd abcd"), [[0, 4, 5], [5, 9, 0]]);
  assertEquals(matchingBlocks("", "abc"), [[0, 3, 0]]);
});

Deno.test("matchingBlocks: the autojunk heuristic for len(b) >= 200", () => {
  // b = 199 × "x" + "q": ntest = 200 // 100 + 1 = 3, so "x" (199 > 3) is popular and is not
  // indexed. a = "zx": no indexed element matches, the empty best match sits at (0, 0) and
  // cannot be extended (a[0] = "z" ≠ b[0] = "x") → no match at all.
  const b = "x".repeat(199) + "q";
  assertEquals(matchingBlocks("zx", b), [[2, 200, 0]]);
  // a = "xz": the empty best match at (0, 0) extends forward over a[0] = b[0] = "x" → 1.
  assertEquals(matchingBlocks("xz", b), [[0, 0, 1], [2, 200, 0]]);
  // Without the heuristic (or with len(b) = 199 < 200) the "x" is found.
  assertEquals(matchingBlocks("zx", b, { autojunk: false }), [[1, 0, 1], [2, 200, 0]]);
  assertEquals(matchingBlocks("zx", "x".repeat(198) + "q"), [[1, 0, 1], [2, 199, 0]]);
});

/** The same 32-bit LCG as the Python script that produced the expected values below. */
function lcgString(seed: number, n: number, alphabet: string): string {
  let x = seed;
  let out = "";
  for (let k = 0; k < n; k++) {
    x = (x * 69069 + 1) % 4294967296;
    out += alphabet[Math.floor(x / 65536) % alphabet.length];
  }
  return out;
}

Deno.test("fuzzRatio/matchingBlocks agree with CPython 3.11 difflib on pseudo-random strings", () => {
  // Expected values computed with CPython 3.11.7:
  //   m = difflib.SequenceMatcher(None, a, b)
  //   (sum(x.size for x in m.get_matching_blocks()), int(round(100 * m.ratio())), len(blocks))
  const cases: [string, number, number, number, number, number, number, number][] = [
    ["ab", 50, 1, 60, 2, 38, 69, 8],
    ["abcde ", 150, 3, 220, 4, 0, 0, 1], // autojunk: every element of b is popular
    ["xyz", 10, 5, 250, 6, 0, 0, 1],
    ["abc ()=.,\n", 199, 7, 201, 8, 0, 0, 1],
    ["ab", 200, 9, 200, 10, 0, 0, 1],
    ["abcdefghij", 300, 11, 199, 12, 37, 15, 19], // len(b) = 199: no autojunk
  ];
  for (const [alphabet, la, sa, lb, sb, matches, ratio, nBlocks] of cases) {
    const a = lcgString(sa, la, alphabet);
    const b = lcgString(sb, lb, alphabet);
    const blocks = matchingBlocks(a, b);
    assertEquals(blocks.reduce((s, x) => s + x[2], 0), matches, `${alphabet} ${la}/${lb}`);
    assertEquals(blocks.length, nBlocks, `${alphabet} ${la}/${lb}`);
    assertEquals(fuzzRatio(a, b), ratio, `${alphabet} ${la}/${lb}`);
  }
  // A realistic near-duplicate (b has 240 chars, so autojunk is on):
  // CPython: [(0, 0, 100), (102, 110, 90), (193, 240, 0)], ratio → 88.
  const b = lcgString(13, 240, "def return self . ( ) , = <EOL>\n");
  const a = b.slice(0, 100) + "QQ" + b.slice(110, 200) + "Z";
  assertEquals(matchingBlocks(a, b), [[0, 0, 100], [102, 110, 90], [193, 240, 0]]);
  assertEquals(fuzzRatio(a, b), 88);
});

Deno.test("fuzzRatio: hand-computed values and Python's round-half-to-even", () => {
  // "abcd" vs "bcde": one block "bcd" (M = 3) → 100·2·3/8 = 75.
  assertEquals(fuzzRatio("abcd", "bcde"), 75);
  // M = 1, lengths 1 + 15 → 100·2/16 = 12.5 → round-half-even → 12 (not 13).
  assertEquals(fuzzRatio("a", "abcdefghijklmno"), 12);
  // M = 3, lengths 3 + 13 → 37.5 → 38 (the even neighbour).
  assertEquals(fuzzRatio("abc", "abcdefghijklm"), 38);
  assertEquals(fuzzRatio("same", "same"), 100);
  assertEquals(fuzzRatio("", "abc"), 0);
  // Code points, not UTF-16 units: "😀a" vs "😀b" → M = 1, lengths 2 + 2 → 50.
  assertEquals(fuzzRatio("😀a", "😀b"), 50);
});

Deno.test("editSimilarity: literals normalised first; empty after normalisation scores 0", () => {
  assertEquals(editSimilarity("return x", "return <STR_LIT:x>"), 100);
  // "self . x = <NUM_LIT>" → "self . x = 0" (12 chars) vs "self . x = 1" (12): M = 11 → 2200/24 = 91.67 → 92.
  assertEquals(editSimilarity("self . x = <NUM_LIT>", "self . x = <NUM_LIT:1>"), 92);
  assertEquals(editSimilarity("<STR_LIT>", "x"), 0);
  assertEquals(editSimilarity("", "x"), 0);
  assertEquals(editSimilarity("x", "<CHAR_LIT>"), 0);
});

// ---------------------------------------------------------------------------
// SARI

Deno.test("tokenize13a: sacrebleu's 13a rules", () => {
  assertEquals(
    tokenize13a("About 95 species are currently accepted."),
    "About 95 species are currently accepted .",
  );
  // Period/comma between digits stay; otherwise split. Brackets, quotes (&quot;) and '-' after digits split.
  assertEquals(tokenize13a("It costs 3.50, (approx.)"), "It costs 3.50 , ( approx . )");
  assertEquals(tokenize13a("&quot;Hi&quot; 1-2 a-b"), '" Hi " 1 - 2 a-b');
  assertEquals(tokenize13a("line-\nbreak\nnext"), "linebreak next");
  assertEquals(tokenize13a("Grüezi, Zürich!"), "Grüezi , Zürich !");
});

Deno.test("sari: the Hugging Face metric card example", () => {
  // evaluate/datasets `sari` docstring and metric card: {'sari': 26.953601953601954}.
  const refs = [
    "About 95 species are currently known.",
    "About 95 species are now accepted.",
    "95 species are now accepted.",
  ];
  assertAlmostEquals(
    sari("About 95 species are currently accepted.", "About 95 you now get in.", refs),
    26.953601953601954,
    1e-12,
  );
  // The pre-tokenised form of the card gives the same value (13a is idempotent here).
  assertAlmostEquals(
    sari(
      "About 95 species are currently accepted .",
      "About 95 you now get in .",
      refs.map((r) => r.replace(".", " .")),
    ),
    26.953601953601954,
    1e-12,
  );
});

Deno.test("sari: hand-computed example", () => {
  // source "a b c", prediction "a d", reference "a c" (one reference, numref = 1).
  // 1-grams: S = {a, b, c}, C = {a, d}, R = {a, c}.
  //   keep: S&C = {a}, good {a} → P = 1/1; S&R = {a, c} → R = 1/2; F1 = 2/3.
  //   del:  S−C = {b, c}, minus R → {b}: P = 1/2.
  //   add:  C−S = {d}, ∩R = ∅ → P = 0; R−S = ∅ → recall 1; F1 = 0.
  // 2-grams: S = {"a b", "b c"}, C = ∅, R = {"a c"}.
  //   keep: S&C = ∅ → P = 1; S&R = ∅ → R = 1; F1 = 1.
  //   del:  S−C = S, minus R = S → P = 2/2 = 1.
  //   add:  C−S = ∅ → P = 1 (0/0 counts as 1); R−S = {"a c"}, none added → recall 0/1 = 0;
  //         F1 = 2·1·0/(1 + 0) = 0.
  // 3-grams: S = {"a b c"}, C = R = ∅ → keep 1, del 1, add 1. 4-grams: all empty → 1, 1, 1.
  // avg keep = (2/3 + 3)/4 = 11/12; avg del = (1/2 + 3)/4 = 7/8; avg add = (0 + 0 + 2)/4 = 1/2.
  // SARI = 100 · (11/12 + 7/8 + 1/2)/3 = 100 · 55/72.
  assertAlmostEquals(sari("a b c", "a d", ["a c"]), (100 * 55) / 72, 1e-12);
  // Identical texts: every component is 1 → 100.
  assertAlmostEquals(sari("a b", "a b", ["a b"]), 100, 1e-12);
  // Lowercasing: case differences do not matter.
  assertAlmostEquals(sari("A B", "a b", ["A b"]), 100, 1e-12);
  assertThrows(() => sari("a", "a", []), RangeError, "at least one reference");
});

Deno.test("sari: an empty prediction is scored by sari() itself", () => {
  // source "a b", prediction "" (token list [""]), reference "a".
  // 1-grams: keep: S&C = ∅ → P = 1, S&R = {a} → R = 0 → F1 = 0; del: S−C = {a, b}, minus R → {b}:
  //   P = 1/2; add: C−S = {""}, ∩R = ∅ → P = 0; R−S = ∅ → recall 1 → F1 = 0.
  // 2-grams: S = {"a b"}, C = R = ∅ → keep 1, del 1, add 1. 3-, 4-grams: 1, 1, 1.
  // SARI = 100 · ((3/4) + (3.5/4) + (3/4))/3 = 100 · 2.375/3.
  assertAlmostEquals(sari("a b", "", ["a"]), (100 * 2.375) / 3, 1e-12);
});

// ---------------------------------------------------------------------------
// scoreTask

Deno.test("scoreTask: mean over all examples; empties score 0 but count", () => {
  assertEquals(
    scoreTask("accuracy", [
      { prediction: "B", reference: "B" },
      { prediction: "", reference: "A" },
      { prediction: "A", reference: "A" },
      { prediction: "C", reference: "A" },
    ]),
    50,
  );
  assertEquals(
    scoreTask("letter_accuracy", [
      { prediction: "A\nbecause", reference: "A\nreason" },
      { prediction: " ", reference: "B\nreason" },
    ]),
    50,
  );
  // (100 + 0 + 75) / 3
  assertEquals(
    scoreTask("edit_similarity", [
      { prediction: "x", reference: "x" },
      { prediction: "<STR_LIT>", reference: "x" },
      { prediction: "abcd", reference: "bcde" },
    ]),
    175 / 3,
  );
  assertAlmostEquals(
    scoreTask("rouge_l", [
      { prediction: "the cat sat", reference: "the cat sat on the mat" },
      { prediction: "", reference: "the cat" },
    ]),
    (100 * (1.2 / (1.6 + 1e-8))) / 2,
    EPS,
  );
});

Deno.test("scoreTask: sari needs a source; the empty-prediction rule is selectable", () => {
  const examples = [
    { prediction: "a d", reference: "a c", source: "a b c" },
    { prediction: "", reference: "a", source: "a b" },
  ];
  assertAlmostEquals(scoreTask("sari", examples), (100 * 55) / 72 / 2, 1e-12);
  assertAlmostEquals(
    scoreTask("sari", examples, { sariEmptyPrediction: "score" }),
    ((100 * 55) / 72 + (100 * 2.375) / 3) / 2,
    1e-12,
  );
  assertEquals(scoreExample("sari", { prediction: "a", reference: "", source: "a" }), 0);
  assertThrows(
    () => scoreTask("sari", [{ prediction: "a", reference: "a" }]),
    TypeError,
    "sari needs example.source",
  );
});

Deno.test("scoreTask: rejects unknown metrics, empty lists and malformed examples", () => {
  assertThrows(
    () => scoreTask("bleu" as TraceMetric, [{ prediction: "a", reference: "a" }]),
    RangeError,
    'unknown TRACE metric "bleu"',
  );
  assertThrows(() => scoreTask("accuracy", []), RangeError, "no examples");
  assertThrows(
    () => scoreTask("accuracy", [{ prediction: "a", reference: "a" }, { prediction: 1 } as never]),
    TypeError,
    "example 1 must have string prediction and reference",
  );
});
