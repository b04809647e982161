import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { byteLevelBpeJson, byteToUnicode } from "../../lib/text/bpe_trainer.ts";
import {
  HF_TOKENIZERS_MODULE,
  hfTokenizerFromJson,
  hfTokenizersAvailable,
  loadHfTokenizer,
} from "../../lib/text/hf_tokenizer.ts";

const available = await hfTokenizersAvailable();
if (!available) {
  console.warn(
    `hf_tokenizer_test: SKIPPING the Hugging Face tokenizer tests — the npm package ` +
      `${HF_TOKENIZERS_MODULE} is not importable. Add "${HF_TOKENIZERS_MODULE}": ` +
      `"npm:@huggingface/tokenizers@0.2.0" to "imports" in deno.json to run them.`,
  );
}

/** GPT-2's bytes_to_unicode table: byte b → the printable character that stands for it. */
/** GPT-2's byte table and its id order (bytes by the code point of their symbol). */
function bytesToUnicode(): { order: number[]; chars: string[] } {
  const chars = byteToUnicode();
  const order = [...chars.keys()].sort((x, y) =>
    chars[x].codePointAt(0)! - chars[y].codePointAt(0)!
  );
  return { order, chars };
}

/**
 * A tiny GPT-2-style byte-level BPE tokenizer.json. Ids 0..255 are the 256 byte
 * symbols in GPT-2 order (so "a" = byte 97 has id 97 − 33 = 64, "Ġ" (space) = 220,
 * "Ċ" (newline) = 198); merges (rank order) add ids 256..262:
 *   h e → he (256), l l → ll (257), he ll → hell (258), hell o → hello (259),
 *   Ġ w → Ġw (260), o r → or (261), Ġw or → Ġwor (262);
 * added specials: <|endoftext|> = 263, <|pad|> = 264.
 */
function tinyTokenizerJson(mergesAsArrays = false): Record<string, unknown> {
  const { order, chars } = bytesToUnicode();
  const vocab: Record<string, number> = {};
  order.forEach((b, id) => (vocab[chars[b]] = id));
  const merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "w"], ["o", "r"], [
    "Ġw",
    "or",
  ]];
  merges.forEach(([a, b], k) => (vocab[a + b] = 256 + k));
  return byteLevelBpeJson({
    vocab,
    merges: merges as [string, string][],
    specials: [{ id: 263, content: "<|endoftext|>" }, { id: 264, content: "<|pad|>" }],
    postProcessor: {
      type: "ByteLevel",
      add_prefix_space: true,
      trim_offsets: false,
      use_regex: true,
    },
    mergesAsArrays,
  });
}

Deno.test({
  name: "hf tokenizer: byte-level BPE ids computed by hand",
  ignore: !available,
  async fn() {
    for (const arrays of [false, true]) {
      const tok = await hfTokenizerFromJson(tinyTokenizerJson(arrays), { source: "tiny.json" });
      assertEquals([tok.name, tok.vocabSize, tok.eosId, tok.padId], [
        "hf:tiny.json",
        265,
        263,
        264,
      ]);
      assertEquals(tok.bosId, 263); // no BOS token: falls back to EOS, as for GPT-2
      // Pre-tokenised (GPT-2 regex) into "hello" and "Ġworld".
      // "hello": h e → he; l l → ll; he ll → hell; hell o → hello = 259.
      // "Ġworld": ranks Ġw(4) < or(5) → Ġw, or → Ġwor (6); "l" = 108−33 = 75, "d" = 100−33 = 67.
      assertEquals(tok.encode("hello world"), [259, 262, 75, 67]);
      // Two spaces: "hello", "Ġ" (the regex's \s+(?!\S) leaves one space alone), "Ġworld", "Ċ".
      assertEquals(tok.encode("hello  world\n"), [259, 220, 262, 75, 67, 198]);
      // "é" = C3 A9: bytes 0xC3 → id 127, 0xA9 → id 102 (bytes 161..172 follow the 94 ASCII ones).
      assertEquals(tok.encode("é"), [127, 102]);
      assertEquals(tok.encode(""), []);
      // A special token written in the text is that token.
      assertEquals(tok.encode("x<|endoftext|>"), [87, 263]);
      assertEquals(tok.tokenToId("<|pad|>"), 264);
      assertEquals(tok.idToToken(259), "hello");
    }
  },
});

Deno.test({
  name: "hf tokenizer: decode(encode(s)) === s; decode skips specials",
  ignore: !available,
  async fn() {
    const tok = await hfTokenizerFromJson(tinyTokenizerJson(), { source: "tiny.json" });
    for (
      const s of [
        "hello world",
        "  leading and trailing  ",
        "判断以下文本：A.支持\n态度：",
        "Grüezi ß 😀",
        "x = foo ( a , b ) <EOL> return <NUM_LIT:200>",
        " .,;: don't",
      ]
    ) {
      assertEquals(tok.decode(tok.encode(s)), s);
    }
    assertEquals(tok.decode([264, 263, 259, 262, 75, 67, 263]), "hello world");
    assertThrows(() => tok.decode([265]), RangeError, "id 265 at position 0");
  },
});

Deno.test({
  name: "hf tokenizer: loadHfTokenizer reads tokenizer_config.json next to the file",
  ignore: !available,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "treelora-hf-" });
    try {
      const path = join(dir, "tokenizer.json");
      await Deno.writeTextFile(path, JSON.stringify(tinyTokenizerJson()));
      await Deno.writeTextFile(
        join(dir, "tokenizer_config.json"),
        JSON.stringify({ bos_token: { content: "<|pad|>" }, eos_token: "<|endoftext|>" }),
      );
      const tok = await loadHfTokenizer(path);
      assertEquals([tok.name, tok.bosId, tok.eosId, tok.padId], [`hf:${path}`, 264, 263, 264]);
      const explicit = await loadHfTokenizer(path, { configPath: null, pad: "<|endoftext|>" });
      assertEquals([explicit.bosId, explicit.eosId, explicit.padId], [263, 263, 263]);
      await assertRejects(() => loadHfTokenizer(path, { eos: "</s>" }), Error, `"</s>"`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hf tokenizer: clear errors for a missing EOS, bad JSON and a non-tokenizer object",
  ignore: !available,
  async fn() {
    const json = tinyTokenizerJson();
    json.added_tokens = [];
    await assertRejects(
      () => hfTokenizerFromJson(json, { source: "no-eos.json" }),
      Error,
      "no-eos.json: cannot tell which token is EOS",
    );
    await assertRejects(
      () => hfTokenizerFromJson([1, 2], { source: "list.json" }),
      TypeError,
      "list.json: a tokenizer.json must be a JSON object",
    );
    const dir = await Deno.makeTempDir({ prefix: "treelora-hf-" });
    try {
      const path = join(dir, "tokenizer.json");
      await Deno.writeTextFile(path, "{ not json");
      await assertRejects(() => loadHfTokenizer(path), Error, `${path} is not valid JSON`);
      await assertRejects(
        () => loadHfTokenizer(join(dir, "missing.json")),
        Error,
        "could not read tokenizer file",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hf tokenizer: without the package, loading fails with the import-map line to add",
  ignore: available,
  async fn() {
    await assertRejects(
      () => hfTokenizerFromJson(tinyTokenizerJson(), { source: "tiny.json" }),
      Error,
      `"${HF_TOKENIZERS_MODULE}": "npm:@huggingface/tokenizers@0.2.0"`,
    );
  },
});
