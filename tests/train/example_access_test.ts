import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import type { ClassIncrementalStream } from "../../lib/data/task.ts";
import { createDecoder, DECODER_PRESETS } from "../../lib/models/decoder.ts";
import { Rng } from "../../lib/random.ts";
import { ByteTokenizer } from "../../lib/text/byte_tokenizer.ts";
import { imageExamples, lmExamples } from "../../lib/train/example_access.ts";
import { trainingBatch } from "../../lib/train/lm_batches.ts";
import { lmLoss } from "../../lib/train/lm_loss.ts";

/** 4 classes in 2 tasks; image n has red byte n; the fake logits are LOGITS[n]. */
const LOGITS = [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 3, 1], [1, 0, 0, 2]];

function stream(): ClassIncrementalStream {
  const pixels = new Uint8Array(4 * 3 * 32 * 32);
  for (let n = 0; n < 4; n++) pixels[n * 3072] = n;
  const set = {
    count: 4,
    size: 32,
    pixels,
    fine: Int32Array.from([0, 1, 2, 3]),
    coarse: new Int32Array(4),
    source: "hand-made",
  };
  return {
    train: set,
    test: set,
    tasks: [
      {
        index: 0,
        name: "t1",
        classes: [0, 1],
        train: Int32Array.from([0, 1]),
        test: new Int32Array(),
      },
      {
        index: 1,
        name: "t2",
        classes: [2, 3],
        train: Int32Array.from([2, 3]),
        test: new Int32Array(),
      },
    ],
    classOrder: [0, 1, 2, 3],
    orderSeed: null,
    labelToOutput: Int32Array.from([0, 1, 2, 3]),
  };
}

function forward(x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const red = tf.round(
      tf.mul(tf.add(tf.mul(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]), 0.5), 0.5), 255),
    );
    const ids = tf.cast(tf.reshape(red, [-1]), "int32");
    return tf.matMul(tf.oneHot(ids as tf.Tensor1D, 4), tf.tensor2d(LOGITS));
  });
}

Deno.test("imageExamples: the loss is the CE over the set's task outputs (hand value)", async () => {
  await tf.setBackend("cpu");
  const reads: string[] = [];
  const ex = imageExamples(stream(), {
    currentTask: 1,
    forward,
    onRead: (t, idx) => reads.push(`${t}:${idx.join(",")}`),
  });
  assertEquals(ex.trainSize(1), 2);
  // Task 2 = outputs 2,3: image 2 (class 2) logits (3,1); image 3 (class 3) logits (0,2).
  const loss = ex.loss(ex.select(1, [0, 1]));
  const want = (Math.log(1 + Math.exp(-2)) + Math.log(1 + Math.exp(-2))) / 2;
  assertAlmostEquals((await loss.data())[0], want, 1e-5);
  loss.dispose();
  const { x, y } = ex.images!(ex.select(0, [1]));
  assertEquals(Array.from(y), [1]);
  x.dispose();
  assertEquals(reads, ["1:0,1", "0:1"]);
});

Deno.test("imageExamples: a future task, a bad position and an empty set are refused", () => {
  const ex = imageExamples(stream(), { currentTask: 0, forward });
  assertThrows(() => ex.select(1, [0]), Error, "task 2 is a future task");
  assertThrows(() => ex.trainSize(1), Error, "future task");
  assertThrows(() => ex.select(0, [2]), Error, "position 2 of task 1 is out of range");
  assertThrows(() => ex.select(0, []), Error, "empty selection");
  assertThrows(() => ex.select(5, [0]), Error, "task 5 does not exist");
});

Deno.test("lmExamples: the loss equals lmLoss on the same training batch", async () => {
  await tf.setBackend("cpu");
  const tokenizer = new ByteTokenizer();
  const config = { ...DECODER_PRESETS["byte-micro"], lora: { rank: 2, alpha: 4, dropout: 0 } };
  const model = createDecoder(config, { rng: new Rng(3) });
  const tasks = [
    { train: [{ prompt: "a=", answer: "1" }, { prompt: "b=", answer: "22" }] },
    { train: [{ prompt: "c=", answer: "3" }] },
  ];
  const ex = lmExamples(tasks, { currentTask: 0, model, tokenizer, maxLength: 16 });
  assertThrows(() => ex.select(1, [0]), Error, "future task");
  const got = ex.loss(ex.select(0, [1, 0]));
  const batch = trainingBatch([tasks[0].train[1], tasks[0].train[0]], { tokenizer, maxLength: 16 });
  const want = tf.tidy(() =>
    lmLoss(
      model.logits(tf.tensor2d(batch.ids, batch.shape, "int32"), {
        training: false,
        attentionMask: tf.tensor2d(batch.mask, batch.shape, "int32"),
      }),
      batch.labels,
    )
  );
  assertAlmostEquals((await got.data())[0], (await want.data())[0], 1e-6);
  got.dispose();
  want.dispose();
  model.dispose();
});
