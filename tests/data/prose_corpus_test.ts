import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { PROSE_SOURCE, proseParagraphs, readProse } from "../../lib/data/prose_corpus.ts";
import { sha256Hex } from "../../lib/io.ts";

Deno.test("readProse: the shipped Moby-Dick decompresses to the recorded text", async () => {
  const text = await readProse();
  assertEquals(text.length, PROSE_SOURCE.characters);
  assertEquals(await sha256Hex(new TextEncoder().encode(text)), PROSE_SOURCE.sha256);
  assertEquals(text.startsWith("CHAPTER 1. Loomings.\n\nCall me Ishmael."), true);
  assertEquals(text.endsWith("only found another orphan.\n"), true);
  // 135 chapters and the epilogue, each starting its own paragraph.
  assertEquals(text.match(/^CHAPTER \d+\. /gm)?.length, 135);
  assertEquals(text.match(/^Epilogue\b/gm)?.length, 1);
});

Deno.test("readProse refuses a changed or non-gzip file, naming it", async () => {
  const dir = await Deno.makeTempDir();
  const changed = join(dir, "changed.txt.gz");
  const gz = new Blob([new TextEncoder().encode("Call me Ishmael.\n")]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  await Deno.writeFile(changed, new Uint8Array(await new Response(gz).arrayBuffer()));
  const err = await assertRejects(() => readProse({ path: changed }), Error, changed);
  assertStringIncludes(err.message, `expected ${PROSE_SOURCE.sha256}`);
  const plain = join(dir, "plain.txt.gz");
  await Deno.writeTextFile(plain, "not gzip");
  await assertRejects(() => readProse({ path: plain }), Error, `${plain}: cannot read`);
});

Deno.test("proseParagraphs: blank-line paragraphs from the start, within the budget", () => {
  const text = "  Call me Ishmael.\n\nSome years ago.\n \n\nIt is a way.\n";
  assertEquals(proseParagraphs(text, { maxCharacters: 31 }), [
    "Call me Ishmael.",
    "Some years ago.",
  ]);
  assertEquals(proseParagraphs(text, { maxCharacters: 43 }), [
    "Call me Ishmael.",
    "Some years ago.",
    "It is a way.",
  ]);
  assertEquals(proseParagraphs(text, { maxCharacters: 15 }), []);
  assertEquals(proseParagraphs(text, { maxCharacters: 0 }), []);
  assertThrows(() => proseParagraphs(text, { maxCharacters: -1 }), RangeError, "≥ 0");
  assertThrows(() => proseParagraphs(text, { maxCharacters: 1.5 }), RangeError, "integer");
});

Deno.test("proseParagraphs on the shipped text: 2560 paragraphs in all, budget respected", async () => {
  const text = await readProse();
  const all = proseParagraphs(text, { maxCharacters: PROSE_SOURCE.characters });
  assertEquals(all.length, 2560);
  assertEquals(all[0], "CHAPTER 1. Loomings.");
  const some = proseParagraphs(text, { maxCharacters: 130_000 });
  const chars = some.reduce((s, p) => s + p.length, 0);
  assertEquals(chars <= 130_000, true);
  // The next paragraph would not have fitted.
  assertEquals(chars + all[some.length].length > 130_000, true);
});
