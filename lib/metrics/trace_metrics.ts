/**
 * Per-example scores of the TRACE benchmark, ported from the Python code that
 * TRACE and TreeLoRA evaluate with (spec §9.5). Every function returns a score
 * on the 0–100 scale; {@link scoreTask} averages them over a task's test set.
 *
 * | metric id         | tasks                                              | function             |
 * |-------------------|----------------------------------------------------|----------------------|
 * | `accuracy`        | C-STANCE, FOMC, NumGLUE-cm/-ds, all O-LoRA tasks    | {@link prefixAccuracy} |
 * | `letter_accuracy` | ScienceQA                                          | {@link letterAccuracy} |
 * | `rouge_l`         | MeetingBank                                        | {@link rougeLF}        |
 * | `edit_similarity` | Py150                                              | {@link editSimilarity} |
 * | `sari`            | 20Minuten                                          | {@link sari}           |
 *
 * **Python string semantics.** Indices and lengths are Unicode code points
 * (Python `str`), not UTF-16 units; "whitespace" is exactly the set for which
 * Python's `str.isspace()` is true (it differs from JavaScript's `\s`: it
 * includes U+001C–U+001F and U+0085 and excludes U+FEFF).
 *
 * **Empty strings.** As in TRACE's `metrics.py`, an example whose prediction or
 * reference is empty scores 0 and still counts in the mean. Where TRACE tests
 * emptiness after a normalisation (Py150 literals, whitespace stripping for
 * accuracy), the test is made after it too.
 *
 * @module
 */

/** Identifier of a TRACE scoring rule. */
export type TraceMetric = "accuracy" | "letter_accuracy" | "rouge_l" | "edit_similarity" | "sari";

/**
 * All metric ids, in table order.
 *
 * @example
 * ```ts
 * import { TRACE_METRICS } from "./trace_metrics.ts";
 * TRACE_METRICS.includes("sari"); // true
 * ```
 */
export const TRACE_METRICS: readonly TraceMetric[] = Object.freeze([
  "accuracy",
  "letter_accuracy",
  "rouge_l",
  "edit_similarity",
  "sari",
]);

// ---------------------------------------------------------------------------
// Python string helpers

/** Characters for which Python's `str.isspace()` is true. */
const PY_WS = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029" +
  "\\u202f\\u205f\\u3000";
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`, "u");
const PY_STRIP = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, "gu");

/** Python `s.split()` (no argument): split on whitespace runs, drop empty ends. */
function pySplit(s: string): string[] {
  return s.split(PY_WS_RUN).filter((w) => w !== "");
}

/** Python `s.strip()` (no argument). */
function pyStrip(s: string): string {
  return s.replace(PY_STRIP, "");
}

/** Python's `round(x)` for a float: round half to even. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d === 0.5) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

/** Python `s.replace(old, new)` (all occurrences, no `$` patterns). */
function replaceAllLiteral(s: string, old: string, replacement: string): string {
  return s.split(old).join(replacement);
}

// ---------------------------------------------------------------------------
// Accuracy

/**
 * `accuracy` (C-STANCE, FOMC, NumGLUE, O-LoRA tasks): 100 when the prediction,
 * stripped of surrounding whitespace, starts with the reference; else 0. A
 * prediction shorter than the reference is wrong; anything after the reference
 * is ignored ("B. hawkish" is correct for "B"). The reference is used as is.
 * 0 when the stripped prediction or the reference is empty.
 *
 * @example
 * ```ts
 * import { prefixAccuracy } from "./trace_metrics.ts";
 * prefixAccuracy("  B. hawkish\n", "B"); // 100
 * prefixAccuracy("1", "12"); // 0
 * ```
 */
export function prefixAccuracy(prediction: string, reference: string): number {
  const p = pyStrip(prediction);
  if (p === "" || reference === "") return 0;
  return p.startsWith(reference) ? 100 : 0;
}

/**
 * The ScienceQA answer letter of a text: the first character (code point) of
 * the whitespace-stripped text, or `"N/A"` when that is empty (TreeLoRA's
 * `eval_ScienceQA.resolve`).
 *
 * @example
 * ```ts
 * import { answerLetter } from "./trace_metrics.ts";
 * answerLetter("\nB\nBecause ..."); // "B"
 * answerLetter("   "); // "N/A"
 * ```
 */
export function answerLetter(text: string): string {
  const s = pyStrip(text);
  if (s === "") return "N/A";
  return String.fromCodePoint(s.codePointAt(0)!);
}

/**
 * `letter_accuracy` (ScienceQA): 100 when the answer letters
 * ({@link answerLetter}) of prediction and reference are equal, else 0. The
 * explanation after the letter is not scored. 0 when either stripped text is
 * empty (so two empty texts, both "N/A", do not count as a match).
 *
 * @example
 * ```ts
 * import { letterAccuracy } from "./trace_metrics.ts";
 * letterAccuracy("A\nBecause rocks are heavy.", "A\nA rock has more mass."); // 100
 * letterAccuracy("", "A\n..."); // 0
 * ```
 */
export function letterAccuracy(prediction: string, reference: string): number {
  if (pyStrip(prediction) === "" || pyStrip(reference) === "") return 0;
  return answerLetter(prediction) === answerLetter(reference) ? 100 : 0;
}

// ---------------------------------------------------------------------------
// ROUGE-L (python `rouge` package, pltrdy, v1.0.1)

/** `rouge.Rouge._get_scores` preprocessing: split on ".", drop empty pieces, normalise whitespace. */
function rougeSentences(text: string): string[] {
  return text.split(".").filter((s) => s.length > 0).map((s) => pySplit(s).join(" "));
}

/**
 * Words of the LCS of `x` and `y`, reconstructed like `rouge_score._recon_lcs`
 * (walk back from the end; on a mismatch go up when table[i−1][j] is strictly
 * larger, else left). Only the set of words is returned, as `Ngrams(…,
 * exclusive=True)` keeps.
 */
function lcsWords(x: readonly string[], y: readonly string[], into: Set<string>): void {
  const n = x.length;
  const m = y.length;
  const w = m + 1;
  const t = new Int32Array((n + 1) * w);
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      t[i * w + j] = x[i - 1] === y[j - 1]
        ? t[(i - 1) * w + j - 1] + 1
        : Math.max(t[(i - 1) * w + j], t[i * w + j - 1]);
    }
  }
  let i = n;
  let j = m;
  while (i > 0 && j > 0) {
    if (x[i - 1] === y[j - 1]) {
      into.add(x[i - 1]);
      i--;
      j--;
    } else if (t[(i - 1) * w + j] > t[i * w + j - 1]) {
      i--;
    } else {
      j--;
    }
  }
}

/** Options of {@link rougeLF}. */
export interface RougeOptions {
  /**
   * Append "\n" to a prediction that contains no newline before scoring
   * (default true, spec §9.5). Its only effect: a prediction ending in "."
   * gains an empty-token sentence, so even an exact copy of a reference that
   * ends in "." scores below 100. `false` scores exactly like TRACE's
   * `metrics.py`.
   */
  appendNewline?: boolean;
}

/**
 * `rouge_l` (MeetingBank): 100 × the ROUGE-L F-measure that TRACE computes with
 * the python `rouge` package (pltrdy, 1.0.1, `Rouge(metrics=["rouge-l"])`,
 * summary-level LCS). Exactly as that package does:
 *
 * - no lowercasing, no punctuation removal, no stemming;
 * - each text is split into "sentences" at every "." (the dots are dropped,
 *   so "3.5" is two sentences), empty pieces are dropped and each piece's
 *   whitespace is normalised to single spaces; tokens are the pieces split on
 *   " " (a piece that was only whitespace yields the empty token "");
 * - m and n are the numbers of **distinct** tokens of each side;
 * - the overlap is the number of distinct tokens in the union, over all
 *   sentence pairs, of the reconstructed LCS token sets;
 * - R = overlap/m, P = overlap/n, F = 2·P·R/(P + R + 1e−8).
 *
 * As in TRACE's `caculate_rouge`, the package is called as
 * `get_scores(reference, prediction)`, i.e. the reference plays the package's
 * "hypothesis" role and the prediction its "reference" role (this matters for
 * the LCS reconstruction). Following spec §9.5, a newline is appended to the
 * prediction when it contains none (a prediction ending in "." then gains one
 * empty-token sentence; see {@link RougeOptions}). 0 when either text is empty
 * or has no sentence at all (where the package raises `ValueError`).
 *
 * @example
 * ```ts
 * import { rougeLF } from "./trace_metrics.ts";
 * rougeLF("the cat sat", "the cat sat on the mat"); // ≈ 75 (P = 3/5, R = 3/3)
 * ```
 */
export function rougeLF(
  prediction: string,
  reference: string,
  options: RougeOptions = {},
): number {
  if (prediction === "" || reference === "") return 0;
  const append = (options.appendNewline ?? true) && !prediction.includes("\n");
  const pred = append ? prediction + "\n" : prediction;
  const evaluated = rougeSentences(reference); // the package's "hyps" (TRACE passes the target)
  const refs = rougeSentences(pred); // the package's "refs" (TRACE passes the prediction)
  if (evaluated.length === 0 || refs.length === 0) return 0;
  const evalWords = evaluated.map((s) => s.split(" "));
  const refWords = refs.map((s) => s.split(" "));
  const m = new Set(refWords.flat()).size;
  const n = new Set(evalWords.flat()).size;
  const union = new Set<string>();
  for (const r of refWords) for (const e of evalWords) lcsWords(r, e, union);
  const llcs = union.size;
  const rLcs = llcs / m;
  const pLcs = llcs / n;
  return 100 * (2.0 * ((pLcs * rLcs) / (pLcs + rLcs + 1e-8)));
}

// ---------------------------------------------------------------------------
// Edit similarity (Py150): fuzzywuzzy fuzz.ratio over difflib.SequenceMatcher

/**
 * TRACE's Py150 `postprocess`: `<NUM_LIT>` → "0", `<STR_LIT>` → "",
 * `<CHAR_LIT>` → "", then every `<STR_LIT:x>` / `<NUM_LIT:x>` / `<CHAR_LIT:x>`
 * (x matched lazily up to the first ">", across newlines) → x, replacing each
 * found literal everywhere in turn, as the Python loop does.
 *
 * @example
 * ```ts
 * import { normalizePy150Literals } from "./trace_metrics.ts";
 * normalizePy150Literals("f ( '<STR_LIT>' , <NUM_LIT:200> , <NUM_LIT> )"); // "f ( '' , 200 , 0 )"
 * ```
 */
export function normalizePy150Literals(code: string): string {
  let s = replaceAllLiteral(code, "<NUM_LIT>", "0");
  s = replaceAllLiteral(s, "<STR_LIT>", "");
  s = replaceAllLiteral(s, "<CHAR_LIT>", "");
  const lits = [...s.matchAll(/<(STR|NUM|CHAR)_LIT:([\s\S]*?)>/gu)].map((m) => [m[1], m[2]]);
  for (const [kind, value] of lits) s = replaceAllLiteral(s, `<${kind}_LIT:${value}>`, value);
  return s;
}

/** Options of {@link matchingBlocks}. */
export interface MatchingBlocksOptions {
  /** difflib's autojunk heuristic (default true, as in `SequenceMatcher(None, a, b)`). */
  autojunk?: boolean;
}

/**
 * difflib `SequenceMatcher(None, a, b).get_matching_blocks()`: triples
 * `[i, j, k]` with `a[i:i+k] == b[j:j+k]` (code-point indices), sorted,
 * adjacent blocks merged, ending with the sentinel `[len(a), len(b), 0]`.
 *
 * A faithful port of CPython's algorithm: `b2j` index of b; with autojunk and
 * len(b) ≥ 200, every element occurring more than ⌊len(b)/100⌋ + 1 times in b
 * is "popular" and removed from the index (it can still join a match through
 * the extension step); `find_longest_match` returns the longest block with the
 * smallest i, then the smallest j, extended over equal neighbours; the regions
 * left and right of each block are searched recursively.
 *
 * @example
 * ```ts
 * import { matchingBlocks } from "./trace_metrics.ts";
 * matchingBlocks("abxcd", "abcd"); // [[0, 0, 2], [3, 2, 2], [5, 4, 0]]
 * ```
 */
export function matchingBlocks(
  a: string,
  b: string,
  options: MatchingBlocksOptions = {},
): [number, number, number][] {
  const A = Array.from(a);
  const B = Array.from(b);
  const la = A.length;
  const lb = B.length;
  const b2j = new Map<string, number[]>();
  B.forEach((elt, j) => {
    const list = b2j.get(elt);
    if (list === undefined) b2j.set(elt, [j]);
    else list.push(j);
  });
  if ((options.autojunk ?? true) && lb >= 200) {
    const ntest = Math.floor(lb / 100) + 1;
    for (const [elt, idxs] of [...b2j]) if (idxs.length > ntest) b2j.delete(elt);
  }
  // isjunk is None, so the junk set is empty: junk never blocks an extension and
  // the "suck up matching junk" loops of find_longest_match never run.
  const findLongestMatch = (alo: number, ahi: number, blo: number, bhi: number) => {
    let besti = alo;
    let bestj = blo;
    let bestsize = 0;
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const newj2len = new Map<number, number>();
      for (const j of b2j.get(A[i]) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) ?? 0) + 1;
        newj2len.set(j, k);
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      j2len = newj2len;
    }
    while (besti > alo && bestj > blo && A[besti - 1] === B[bestj - 1]) {
      besti--;
      bestj--;
      bestsize++;
    }
    while (
      besti + bestsize < ahi && bestj + bestsize < bhi &&
      A[besti + bestsize] === B[bestj + bestsize]
    ) {
      bestsize++;
    }
    return [besti, bestj, bestsize] as [number, number, number];
  };
  const queue: [number, number, number, number][] = [[0, la, 0, lb]];
  const blocks: [number, number, number][] = [];
  while (queue.length > 0) {
    const [alo, ahi, blo, bhi] = queue.pop()!;
    const x = findLongestMatch(alo, ahi, blo, bhi);
    const [i, j, k] = x;
    if (k > 0) {
      blocks.push(x);
      if (alo < i && blo < j) queue.push([alo, i, blo, j]);
      if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
    }
  }
  blocks.sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2]);
  const out: [number, number, number][] = [];
  let [i1, j1, k1] = [0, 0, 0];
  for (const [i2, j2, k2] of blocks) {
    if (i1 + k1 === i2 && j1 + k1 === j2) {
      k1 += k2;
    } else {
      if (k1 > 0) out.push([i1, j1, k1]);
      [i1, j1, k1] = [i2, j2, k2];
    }
  }
  if (k1 > 0) out.push([i1, j1, k1]);
  out.push([la, lb, 0]);
  return out;
}

/**
 * fuzzywuzzy `fuzz.ratio(a, b)` with difflib (no python-Levenshtein):
 * 100 if a == b; 0 if either is empty; else
 * round(100 · 2·M / (len(a) + len(b))) with M the total size of
 * {@link matchingBlocks}(a, b) and Python's round-half-to-even.
 *
 * @example
 * ```ts
 * import { fuzzRatio } from "./trace_metrics.ts";
 * fuzzRatio("abcd", "bcde"); // 75 (M = 3: "bcd")
 * ```
 */
export function fuzzRatio(a: string, b: string): number {
  if (a === b) return 100;
  const la = Array.from(a).length;
  const lb = Array.from(b).length;
  if (la === 0 || lb === 0) return 0;
  let matches = 0;
  for (const [, , k] of matchingBlocks(a, b)) matches += k;
  return pyRound(100 * (2.0 * matches / (la + lb)));
}

/**
 * `edit_similarity` (Py150): {@link fuzzRatio} of the prediction and the
 * reference after {@link normalizePy150Literals}, as TRACE's `eval_Py150`
 * (`fuzz.ratio(prediction, target)`: the reference is difflib's `b`, the side
 * the autojunk heuristic looks at). 0 when either normalised text is empty.
 *
 * @example
 * ```ts
 * import { editSimilarity } from "./trace_metrics.ts";
 * editSimilarity("return x", "return <STR_LIT:x>"); // 100
 * ```
 */
export function editSimilarity(prediction: string, reference: string): number {
  const p = normalizePy150Literals(prediction);
  const r = normalizePy150Literals(reference);
  if (p === "" || r === "") return 0;
  return fuzzRatio(p, r);
}

// ---------------------------------------------------------------------------
// SARI (Hugging Face `evaluate`/`datasets` metric "sari")

/**
 * sacrebleu's `13a` tokenizer (mteval-v13a, as used by the HF `sari` metric).
 *
 * @example
 * ```ts
 * import { tokenize13a } from "./trace_metrics.ts";
 * tokenize13a("About 95 species are currently accepted."); // "About 95 species are currently accepted ."
 * tokenize13a("It costs 3.50, (approx.)"); // "It costs 3.50 , ( approx . )"
 * ```
 */
export function tokenize13a(line: string): string {
  let s = replaceAllLiteral(line, "<skipped>", "");
  s = replaceAllLiteral(s, "-\n", "");
  s = replaceAllLiteral(s, "\n", " ");
  s = replaceAllLiteral(s, "&quot;", '"');
  s = replaceAllLiteral(s, "&amp;", "&");
  s = replaceAllLiteral(s, "&lt;", "<");
  s = replaceAllLiteral(s, "&gt;", ">");
  s = ` ${s} `;
  s = s.replace(/([{-~[-` -&(-+:-@/])/gu, " $1 ");
  s = s.replace(/([^0-9])([.,])/gu, "$1 $2 ");
  s = s.replace(/([.,])([^0-9])/gu, " $1 $2");
  s = s.replace(/([0-9])(-)/gu, "$1 $2 ");
  return pySplit(pyStrip(s)).join(" ");
}

/** HF sari `normalize`: lowercase, then 13a tokenisation. */
function sariNormalize(sentence: string): string {
  return tokenize13a(sentence.toLowerCase());
}

type Counter = Map<string, number>;

function counterOf(xs: readonly string[], times = 1): Counter {
  const c: Counter = new Map();
  for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1);
  if (times !== 1) { for (const [k, v] of c) c.set(k, v * times); }
  return c;
}

/** Python `Counter & Counter`: elementwise min, positive counts only, in the left operand's order. */
function counterAnd(a: Counter, b: Counter): Counter {
  const out: Counter = new Map();
  for (const [k, v] of a) {
    const m = Math.min(v, b.get(k) ?? 0);
    if (m > 0) out.set(k, m);
  }
  return out;
}

/** Python `Counter - Counter`: elementwise difference, positive counts only. */
function counterSub(a: Counter, b: Counter): Counter {
  const out: Counter = new Map();
  for (const [k, v] of a) {
    const d = v - (b.get(k) ?? 0);
    if (d > 0) out.set(k, d);
  }
  return out;
}

function f1(p: number, r: number): number {
  return p > 0 || r > 0 ? (2 * p * r) / (p + r) : 0;
}

/** HF `SARIngram`: [keep F1, deletion precision, addition F1] for one n. */
function sariNgram(
  sgrams: readonly string[],
  cgrams: readonly string[],
  rgramsList: readonly (readonly string[])[],
  numref: number,
): [number, number, number] {
  const rCounter = counterOf(rgramsList.flat());
  const sCounter = counterOf(sgrams);
  const cCounter = counterOf(cgrams);
  const sRep = counterOf(sgrams, numref);
  const cRep = counterOf(cgrams, numref);

  // KEEP (with the "alleged bug" fix: recall divides by the summed counts).
  const keepRep = counterAnd(sRep, cRep);
  const keepGood = counterAnd(keepRep, rCounter);
  const keepAll = counterAnd(sRep, rCounter);
  let keepTmp1 = 0;
  let keepTmp2 = 0;
  for (const [g, v] of keepGood) {
    keepTmp1 += v / keepRep.get(g)!;
    keepTmp2 += v;
  }
  let keepAllSum = 0;
  for (const v of keepAll.values()) keepAllSum += v;
  const keepP = keepRep.size > 0 ? keepTmp1 / keepRep.size : 1;
  const keepR = keepAll.size > 0 ? keepTmp2 / keepAllSum : 1;
  const keep = f1(keepP, keepR);

  // DELETION (precision only).
  const delRep = counterSub(sRep, cRep);
  const delGood = counterSub(delRep, rCounter);
  let delTmp = 0;
  for (const [g, v] of delGood) delTmp += v / delRep.get(g)!;
  const delP = delRep.size > 0 ? delTmp / delRep.size : 1;

  // ADDITION (sets, not counts).
  let addGram = 0;
  let addGood = 0;
  for (const g of cCounter.keys()) {
    if (sCounter.has(g)) continue;
    addGram++;
    if (rCounter.has(g)) addGood++;
  }
  let addAll = 0;
  for (const g of rCounter.keys()) if (!sCounter.has(g)) addAll++;
  const addP = addGram > 0 ? addGood / addGram : 1;
  const addR = addAll > 0 ? addGood / addAll : 1;
  const add = f1(addP, addR);
  return [keep, delP, add];
}

/** n-grams 1..4 of a token list, joined by single spaces. */
function ngrams(tokens: readonly string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= tokens.length; i++) out.push(tokens.slice(i, i + n).join(" "));
  return out;
}

/**
 * `sari` (20Minuten): the Hugging Face `sari` metric for one example, 0–100
 * (= `evaluate.load("sari").compute(sources=[source], predictions=[prediction],
 * references=[references])["sari"]`). Each text is lowercased and
 * 13a-tokenised ({@link tokenize13a}), split on single spaces, and for n = 1..4
 * the keep F1, deletion precision and addition F1 are computed as in the
 * reference implementation (tensor2tensor's variant: 0/0 counts as 1, and the
 * keep recall divides by the summed reference-kept counts); the result is
 * 100 · mean(avg keep, avg del, avg add). For TRACE the source is the whole
 * prompt (instruction included) and there is one reference.
 *
 * Unlike the other metrics this function scores an empty prediction (TRACE's
 * SARI code does not skip empties); {@link scoreTask} applies the empty rule.
 *
 * @example
 * ```ts
 * import { sari } from "./trace_metrics.ts";
 * sari("About 95 species are currently accepted.", "About 95 you now get in.", [
 *   "About 95 species are currently known.",
 *   "About 95 species are now accepted.",
 *   "95 species are now accepted.",
 * ]); // ≈ 26.9536 (the metric card's example)
 * ```
 */
export function sari(source: string, prediction: string, references: readonly string[]): number {
  if (references.length === 0) {
    throw new RangeError("sari: at least one reference is required");
  }
  const s1 = sariNormalize(source).split(" ");
  const c1 = sariNormalize(prediction).split(" ");
  const r1 = references.map((r) => sariNormalize(r).split(" "));
  const keep: number[] = [];
  const del: number[] = [];
  const add: number[] = [];
  for (let n = 1; n <= 4; n++) {
    const [k, d, a] = sariNgram(
      ngrams(s1, n),
      ngrams(c1, n),
      r1.map((r) => ngrams(r, n)),
      references.length,
    );
    keep.push(k);
    del.push(d);
    add.push(a);
  }
  const avg = (xs: number[]) => xs.reduce((acc, x) => acc + x, 0) / 4;
  return 100 * ((avg(keep) + avg(del) + avg(add)) / 3);
}

// ---------------------------------------------------------------------------
// Task score

/** One scored example: model output, gold answer, and (for SARI) the source. */
export interface ScoredExample {
  /** Generated text (the continuation only, special tokens removed). */
  prediction: string;
  /** Gold answer. */
  reference: string;
  /** The input the prediction was made from; required by `sari` (TRACE: the full prompt). */
  source?: string;
}

/** Options of {@link scoreTask}. */
export interface ScoreTaskOptions {
  /**
   * How `sari` treats an empty prediction. `"zero"` (default): the uniform
   * empty rule of spec §9.5, score 0. `"score"`: score it like any other text,
   * as TRACE's `caculate_sari` does (an empty output then still earns the
   * deletion term, often ≈ 30).
   */
  sariEmptyPrediction?: "zero" | "score";
  /** Passed to {@link rougeLF} (default true). */
  rougeAppendNewline?: boolean;
}

/**
 * The per-example scoring function of a metric (0–100).
 *
 * @example
 * ```ts
 * import { scoreExample } from "./trace_metrics.ts";
 * scoreExample("accuracy", { prediction: "A", reference: "A" }); // 100
 * ```
 */
export function scoreExample(
  metric: TraceMetric,
  example: ScoredExample,
  options: ScoreTaskOptions = {},
): number {
  const { prediction, reference } = example;
  switch (metric) {
    case "accuracy":
      return prefixAccuracy(prediction, reference);
    case "letter_accuracy":
      return letterAccuracy(prediction, reference);
    case "rouge_l":
      return rougeLF(prediction, reference, { appendNewline: options.rougeAppendNewline });
    case "edit_similarity":
      return editSimilarity(prediction, reference);
    case "sari": {
      if (typeof example.source !== "string") {
        throw new TypeError("sari needs example.source (TRACE uses the full prompt as the source)");
      }
      if (reference === "") return 0;
      if (prediction === "" && (options.sariEmptyPrediction ?? "zero") === "zero") return 0;
      return sari(example.source, prediction, [reference]);
    }
    default:
      throw new RangeError(
        `unknown TRACE metric ${JSON.stringify(metric)}; expected one of ${
          TRACE_METRICS.join(", ")
        }`,
      );
  }
}

/**
 * Mean score (0–100) of a task's examples under `metric`. Every example
 * counts in the denominator; empty predictions or references score 0 (see the
 * module doc). Throws on an empty example list, naming the metric.
 *
 * @example
 * ```ts
 * import { scoreTask } from "./trace_metrics.ts";
 * scoreTask("accuracy", [
 *   { prediction: "B", reference: "B" },
 *   { prediction: "", reference: "A" },
 * ]); // 50
 * ```
 */
export function scoreTask(
  metric: TraceMetric,
  examples: readonly ScoredExample[],
  options: ScoreTaskOptions = {},
): number {
  if (!TRACE_METRICS.includes(metric)) {
    throw new RangeError(
      `unknown TRACE metric ${JSON.stringify(metric)}; expected one of ${TRACE_METRICS.join(", ")}`,
    );
  }
  if (examples.length === 0) {
    throw new RangeError(
      `scoreTask(${metric}): no examples to score (the mean of nothing is undefined)`,
    );
  }
  let total = 0;
  examples.forEach((ex, k) => {
    if (typeof ex?.prediction !== "string" || typeof ex?.reference !== "string") {
      throw new TypeError(
        `scoreTask(${metric}): example ${k} must have string prediction and reference fields`,
      );
    }
    total += scoreExample(metric, ex, options);
  });
  return total / examples.length;
}
