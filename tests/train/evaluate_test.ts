import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertThrows } from "@std/assert";
import type { ClassIncrementalStream, ImageSet } from "../../lib/data/task.ts";
import type { ImageClassifier } from "../../lib/models/image_classifier.ts";
import { evaluateSeenTasks, taskOutputRange } from "../../lib/train/evaluate.ts";

/**
 * 4 classes in 2 tasks (outputs 0,1 | 2,3), 2 test images per class. The fake
 * model reads the logits straight from the first pixel's red byte: image n has
 * red byte = n, and LOGITS[n] are its 4 logits.
 */
const LOGITS = [
  [5, 1, 0, 0], // class 0 → CIL ok, TIL ok
  [1, 5, 9, 0], // class 0 → CIL says output 2 (wrong once task 2 is seen), TIL says 1 (wrong)
  [0, 5, 9, 0], // class 1 → CIL: after task 1 only outputs 0,1 → 1 (ok); after task 2 → 2 (wrong); TIL ok
  [0, 5, 0, 0], // class 1 → ok
  [0, 0, 5, 1], // class 2 → ok
  [9, 0, 1, 5], // class 2 → CIL 0 (wrong), TIL: argmax(1,5) → 3 (wrong)
  [0, 0, 1, 5], // class 3 → ok
  [0, 9, 5, 1], // class 3 → CIL 1 (wrong), TIL 2 (wrong)
];

function set(): ImageSet {
  const count = LOGITS.length;
  const pixels = new Uint8Array(count * 3 * 32 * 32);
  for (let n = 0; n < count; n++) pixels[n * 3072] = n;
  return {
    count,
    size: 32,
    pixels,
    fine: Int32Array.from([0, 0, 1, 1, 2, 2, 3, 3]),
    coarse: new Int32Array(count),
    source: "hand-made",
  };
}

const model: ImageClassifier = {
  numOutputs: 4,
  logits: (x) =>
    tf.tidy(() => {
      // The red channel of pixel (0,0), back from the normalised float to the byte.
      const red = tf.round(
        tf.mul(tf.add(tf.mul(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]), 0.5), 0.5), 255),
      );
      const ids = tf.cast(tf.reshape(red, [-1]), "int32");
      return tf.matMul(tf.oneHot(ids as tf.Tensor1D, LOGITS.length), tf.tensor2d(LOGITS));
    }),
  loraSites: () => [],
  headVariables: () => [],
};

function stream(): ClassIncrementalStream {
  const s = set();
  return {
    train: s,
    test: s,
    tasks: [
      {
        index: 0,
        name: "task-1",
        classes: [0, 1],
        train: new Int32Array(),
        test: Int32Array.from([0, 1, 2, 3]),
      },
      {
        index: 1,
        name: "task-2",
        classes: [2, 3],
        train: new Int32Array(),
        test: Int32Array.from([4, 5, 6, 7]),
      },
    ],
    classOrder: [0, 1, 2, 3],
    orderSeed: null,
    labelToOutput: Int32Array.from([0, 1, 2, 3]),
  };
}

Deno.test("evaluateSeenTasks: CIL and TIL accuracy match the hand count", async () => {
  await tf.setBackend("cpu");
  const s = stream();
  const after1 = await evaluateSeenTasks(model, s, { throughTask: 0 });
  // After task 1 the argmax runs over outputs 0,1: images 0 ok, 1 wrong (5 at output 1), 2 ok, 3 ok.
  assertEquals(after1, { cil: [75], til: [75], images: 4 });
  const after2 = await evaluateSeenTasks(model, s, { throughTask: 1, batchSize: 3 });
  // Task 1 with outputs 0..3: image 0 ok, 1 → 2 wrong, 2 → 2 wrong, 3 ok → 50%; TIL unchanged 75%.
  // Task 2: images 4 ok, 5 → 0 wrong, 6 ok, 7 → 1 wrong → 50%; TIL: 4 ok, 5 wrong, 6 ok, 7 wrong → 50%.
  assertEquals(after2, { cil: [50, 50], til: [75, 50], images: 8 });
});

Deno.test("taskOutputRange: contiguous ranges, error otherwise", () => {
  const s = stream();
  assertEquals(taskOutputRange(s, s.tasks[1]), [2, 4]);
  const bad = { ...s, labelToOutput: Int32Array.from([0, 2, 1, 3]) };
  assertThrows(() => taskOutputRange(bad, s.tasks[0]), Error, "not contiguous");
});
