import { assertEquals, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { byteToUnicode, trainBpe } from "../../lib/text/bpe_trainer.ts";
import { hfTokenizerFromJson, loadHfTokenizer } from "../../lib/text/hf_tokenizer.ts";

const SHARED = new URL("../../../shared/data/", import.meta.url).pathname;

function sharedTestTexts(): string[] {
  const texts: string[] = [];
  for (const root of ["olora", "trace"]) {
    let tasks: Deno.DirEntry[] = [];
    try {
      tasks = [...Deno.readDirSync(join(SHARED, root))].filter((e) => e.isDirectory);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const recs = JSON.parse(Deno.readTextFileSync(join(SHARED, root, t.name, "test.json")));
        for (const r of recs) texts.push(r.prompt, r.answer);
      } catch {
        // a task without test.json
      }
    }
  }
  return texts;
}

Deno.test("byteToUnicode is GPT-2's table: printable bytes stay, the others move to U+0100 on", () => {
  const t = byteToUnicode();
  assertEquals([t[65], t[32], t[10], t[0], t[0xad], t[0xff]], ["A", "Ġ", "Ċ", "Ā", "Ń", "ÿ"]);
  // 0xAD is the 68th byte that is not printable (0x00–0x20, 0x7F–0xA0, then 0xAD): U+0100 + 67.
  assertEquals(t[0xad].codePointAt(0), 0x100 + 67);
  assertEquals(new Set(t).size, 256);
});

Deno.test("trainBpe: the merges of a worked example, by hand", () => {
  // Words: "low" ×2, " lower", " lowest", " low". Pair counts: l-o 5, o-w 5 (tie: "l" < "o"),
  // then lo-w 5, then Ġ-low 3 (low-e 2, e-r 1, e-s 1, s-t 1).
  const bpe = trainBpe(["low lower lowest", "low low"], { vocabSize: 259 });
  assertEquals(bpe.merges, [["l", "o"], ["lo", "w"], ["Ġ", "low"]]);
  assertEquals([bpe.vocabSize, bpe.words], [262, 4]);
  // No pair occurs twice any more beyond low-e: minFrequency 3 stops before it.
  assertEquals(
    trainBpe(["low lower lowest", "low low"], { vocabSize: 300, minFrequency: 3 }).merges
      .length,
    3,
  );
  assertThrows(() => trainBpe([], { vocabSize: 100 }), RangeError, "vocabSize");
});

Deno.test("a trained BPE saves as a tokenizer.json that @huggingface/tokenizers reads, and round-trips", async () => {
  const shared = sharedTestTexts();
  const fixed = [
    "Stance toward the object? A.support B.oppose\nText: Artists support the tram.\nStance:",
    "Die Stadt plant eine neue Brücke über den Fluss — 20 Minuten.",
    "def f(x):\n\treturn x ** 2  # ünïcödé, emoji 🙂, CJK 漢字",
    "   leading and trailing spaces   ",
    "",
  ];
  const corpus = [...fixed, ...shared.slice(0, 2000)];
  const bpe = trainBpe(corpus, { vocabSize: 600 });
  const dir = await Deno.makeTempDir();
  const path = join(dir, "tokenizer.json");
  await Deno.writeTextFile(path, JSON.stringify(bpe.json));
  const tok = await loadHfTokenizer(path);
  // Without ../shared the corpus is the five fixed texts and training stops early (no pair left
  // twice); the specials always follow the learnt symbols.
  const learnt = 256 + bpe.merges.length;
  assertEquals(bpe.vocabSize, learnt + 3);
  if (shared.length > 0) assertEquals(learnt, 600);
  assertEquals([tok.vocabSize, tok.bosId, tok.eosId, tok.padId], [
    learnt + 3,
    learnt,
    learnt + 1,
    learnt + 2,
  ]);
  let failures = 0;
  for (const text of [...fixed, ...shared]) if (tok.decode(tok.encode(text)) !== text) failures++;
  assertEquals(failures, 0);
  // Encoding a training word gives the segmentation training arrived at.
  const small = await hfTokenizerFromJson(
    trainBpe(["low lower lowest", "low low"], { vocabSize: 259 }).json,
    { source: "inline" },
  );
  assertEquals(small.encode(" lower").map((id) => small.decode([id])), [" low", "e", "r"]);
  await Deno.remove(dir, { recursive: true });
});
