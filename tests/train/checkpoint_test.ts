import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import { captureCheckpoint } from "../../lib/train/checkpoint.ts";
import { createAdam } from "../../lib/train/step.ts";
import { Rng } from "../../lib/random.ts";

Deno.test("captureCheckpoint: Adam's slots are captured (iterations, m, v) and no tensor is leaked", async () => {
  await tf.setBackend("cpu");
  const a = tf.variable(tf.tensor2d([[1, 2]]), true, "ckpt_test/a");
  const b = tf.variable(tf.tensor2d([[0.5], [-1]]), true, "ckpt_test/b");
  const model = {
    loraSites: () => [{ name: "s", dIn: 2, dOut: 2, a, b }],
    headVariables: () => [],
  };
  const optimizer = createAdam({ lr: 0.1, beta1: 0.9, beta2: 0.999 });
  optimizer.minimize(() => tf.sum(tf.matMul(b, a)) as tf.Scalar, false, [a, b]);
  const rng = new Rng(1);
  const options = {
    taskIndex: 0,
    optimizer,
    rngs: { data: rng, method: rng, dropout: rng },
    method: { json: {}, arrays: {} },
  };
  const first = await captureCheckpoint(model, options);
  const before = tf.memory().numTensors;
  const second = await captureCheckpoint(model, options);
  assertEquals(tf.memory().numTensors, before);
  // iterations (1 step taken), then m and v of each of the 2 variables.
  assertEquals(first.optimizer!.length, 5);
  assertEquals(Array.from(first.optimizer![0].data), [1]);
  assertEquals(
    second.optimizer!.map((w) => Array.from(w.data)),
    first.optimizer!.map((w) => Array.from(w.data)),
  );
  assertEquals(first.variables.map((v) => v.shape), [[1, 2], [2, 1]]);
  optimizer.dispose();
  a.dispose();
  b.dispose();
});
