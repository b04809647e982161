import { assertEquals, assertThrows } from "@std/assert";
import {
  BYTE_BOS_ID,
  BYTE_EOS_ID,
  BYTE_PAD_ID,
  BYTE_VOCAB_SIZE,
  ByteTokenizer,
} from "../../lib/text/byte_tokenizer.ts";

Deno.test("byte tokenizer: ids are UTF-8 bytes; specials follow the 256 byte values", () => {
  const tok = new ByteTokenizer();
  assertEquals(
    [tok.name, tok.vocabSize, tok.bosId, tok.eosId, tok.padId],
    ["byte-level", 259, 256, 257, 258],
  );
  assertEquals([BYTE_BOS_ID, BYTE_EOS_ID, BYTE_PAD_ID, BYTE_VOCAB_SIZE], [256, 257, 258, 259]);
  // "A" = 0x41; "ü" = U+00FC = C3 BC; "中" = U+4E2D = E4 B8 AD; "😀" = U+1F600 = F0 9F 98 80.
  assertEquals(tok.encode("A"), [65]);
  assertEquals(tok.encode("ü"), [0xc3, 0xbc]);
  assertEquals(tok.encode("中"), [0xe4, 0xb8, 0xad]);
  assertEquals(tok.encode("😀"), [0xf0, 0x9f, 0x98, 0x80]);
  assertEquals(tok.encode(""), []);
});

Deno.test("byte tokenizer: decode(encode(s)) === s, including a leading BOM and newlines", () => {
  const tok = new ByteTokenizer();
  for (
    const s of [
      "",
      "hello world",
      "判断以下文本对指定对象的态度：A.支持\n态度：",
      "Grüezi mitenand, äöü ß",
      "\uFEFFstarts with a byte-order mark",
      "tab\tnew\nline\r\n😀 <EOL> <NUM_LIT:200>",
    ]
  ) {
    assertEquals(tok.decode(tok.encode(s)), s);
  }
});

Deno.test("byte tokenizer: decode skips BOS/EOS/PAD anywhere", () => {
  const tok = new ByteTokenizer();
  const ids = [258, 258, 256, ...tok.encode("hi"), 257, 258];
  assertEquals(tok.decode(ids), "hi");
  // A special in the middle of a multi-byte character does not break it.
  assertEquals(tok.decode([0xc3, 257, 0xbc]), "ü");
});

Deno.test("byte tokenizer: invalid UTF-8 decodes leniently to U+FFFD", () => {
  const tok = new ByteTokenizer();
  assertEquals(tok.decode([0xff]), "\uFFFD");
  assertEquals(tok.decode([104, 0xc3]), "h\uFFFD"); // truncated 2-byte sequence
  assertEquals(tok.decode([0xe4, 0xb8, 105]), "\uFFFDi"); // truncated 3-byte sequence, then "i"
});

Deno.test("byte tokenizer: decode rejects ids outside 0..258, naming the id and position", () => {
  const tok = new ByteTokenizer();
  assertThrows(() => tok.decode([104, 259]), RangeError, "id 259 at position 1");
  assertThrows(() => tok.decode([-1]), RangeError, "id -1 at position 0");
  assertThrows(() => tok.decode([1.5]), RangeError, "0..258");
});
