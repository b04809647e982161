import { assertEquals, assertThrows } from "@std/assert";
import { promptBatch, trainingBatch } from "../../lib/train/lm_batches.ts";
import { ByteTokenizer } from "../../lib/text/byte_tokenizer.ts";

const tok = new ByteTokenizer();
const [BOS, EOS, PAD, X] = [256, 257, 258, -100];
const b = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("trainingBatch: BOS + prompt + answer + EOS, labels on answer and EOS, left pad to 8", () => {
  const batch = trainingBatch([{ prompt: "ab", answer: "c" }], { tokenizer: tok, maxLength: 16 });
  assertEquals(batch.shape, [1, 8]);
  assertEquals(Array.from(batch.ids), [PAD, PAD, PAD, BOS, 97, 98, 99, EOS]);
  assertEquals(Array.from(batch.labels), [X, X, X, X, X, X, 99, EOS]);
  assertEquals(Array.from(batch.mask), [0, 0, 0, 1, 1, 1, 1, 1]);
  assertEquals(batch.lengths, [5]);
});

Deno.test("trainingBatch: left truncation; EOS, then BOS, only if there is room", () => {
  // "abcdefgh" (8) with maxLength 5: the last 5 bytes, no room for EOS or BOS. The labelled span
  // is still len(answer) + 1 = 3 positions, reaching one token into the prompt (the code's rule).
  const cut = trainingBatch([{ prompt: "abcdef", answer: "gh" }], {
    tokenizer: tok,
    maxLength: 5,
  });
  assertEquals(Array.from(cut.ids), [PAD, PAD, PAD, ...b("defgh")]);
  assertEquals(Array.from(cut.labels), [X, X, X, X, X, ...b("fgh")]);
  // maxLength 9: room for EOS only.
  const eos = trainingBatch([{ prompt: "abcdef", answer: "gh" }], {
    tokenizer: tok,
    maxLength: 9,
  });
  assertEquals(Array.from(eos.ids), [PAD, PAD, PAD, PAD, PAD, PAD, PAD, ...b("abcdefgh"), EOS]);
  assertEquals(Array.from(eos.labels.subarray(-4)), [X, ...b("gh"), EOS]);
  assertEquals(eos.shape, [1, 16]);
  // maxLength 10: both fit.
  const both = trainingBatch([{ prompt: "abcdef", answer: "gh" }], {
    tokenizer: tok,
    maxLength: 10,
  });
  assertEquals(Array.from(both.ids.subarray(-10)), [BOS, ...b("abcdefgh"), EOS]);
});

Deno.test("trainingBatch: rows of a batch pad to the longest, rounded to padMultiple", () => {
  const batch = trainingBatch([
    { prompt: "Q: 1+1?\nA:", answer: " 2" },
    { prompt: "x", answer: "é" }, // "é" is 2 bytes: answer span 2 + EOS
  ], { tokenizer: tok, maxLength: 64 });
  assertEquals(batch.shape, [2, 16]);
  assertEquals(batch.lengths, [14, 5]);
  assertEquals(Array.from(batch.ids.subarray(0, 16)), [PAD, PAD, BOS, ...b("Q: 1+1?\nA: 2"), EOS]);
  assertEquals(Array.from(batch.labels.subarray(0, 16)), [...new Array(13).fill(X), 32, 50, EOS]);
  assertEquals(Array.from(batch.ids.subarray(16)), [
    ...new Array(11).fill(PAD),
    BOS,
    120,
    0xc3,
    0xa9,
    EOS,
  ]);
  assertEquals(Array.from(batch.labels.subarray(16)), [...new Array(13).fill(X), 0xc3, 0xa9, EOS]);
  assertEquals(Array.from(batch.mask.subarray(16)), [...new Array(11).fill(0), 1, 1, 1, 1, 1]);
  const tight = trainingBatch([{ prompt: "ab", answer: "c" }], {
    tokenizer: tok,
    maxLength: 16,
    padMultiple: 1,
  });
  assertEquals(tight.shape, [1, 5]);
  assertThrows(() => trainingBatch([], { tokenizer: tok, maxLength: 8 }), Error, "no examples");
});

Deno.test("promptBatch: BOS + the last maxPromptLength − 1 prompt tokens, left-padded", () => {
  const batch = promptBatch(["abcdef", "hi"], { tokenizer: tok, maxPromptLength: 4 });
  assertEquals(batch.shape, [2, 8]);
  assertEquals(Array.from(batch.ids), [
    PAD,
    PAD,
    PAD,
    PAD,
    BOS,
    ...b("def"),
    PAD,
    PAD,
    PAD,
    PAD,
    PAD,
    BOS,
    ...b("hi"),
  ]);
  assertEquals(Array.from(batch.mask), [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1]);
  assertEquals(batch.lengths, [4, 3]);
  assertEquals(
    Array.from(promptBatch([""], { tokenizer: tok, maxPromptLength: 1, padMultiple: 1 }).ids),
    [BOS],
  );
});
