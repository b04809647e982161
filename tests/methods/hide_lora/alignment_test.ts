import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import { alignHead } from "../../../lib/methods/hide_lora/alignment.ts";
import {
  type ClassGaussian,
  createGaussianSampler,
} from "../../../lib/methods/hide_lora/gaussians.ts";
import { Rng } from "../../../lib/random.ts";

const SCHEDULE = {
  epochs: 1,
  samplesPerClass: 1,
  batchSize: 2,
  lr: 0.5,
  momentum: 0,
  weightDecay: 0,
};

Deno.test("alignHead: one SGD step matches the hand gradient; longer alignment cuts the loss", async () => {
  await initBackend("cpu");
  const before = tf.memory().numTensors;
  // Zero-variance classes: the samples are the means (1, 0) and (0, 2).
  const point = (m: number[]): ClassGaussian => ({
    mean: Float32Array.from(m),
    cov: new Float32Array(m.length),
    count: 1,
  });
  const w = tf.tidy(() => tf.variable(tf.zeros([2, 2])));
  const b = tf.tidy(() => tf.variable(tf.zeros([2])));
  const head = {
    variables: [w, b],
    logits: (f: tf.Tensor2D) => tf.add(tf.matMul(f, w), b) as tf.Tensor2D,
  };
  const losses = await alignHead(head, {
    gaussians: [point([1, 0]), point([0, 2])],
    columns: [0, 1],
    schedule: SCHEDULE,
    rng: new Rng(0),
  });
  // Zero logits: loss log 2; ∂L/∂logits = (softmax − y)/B = ±0.25; ∂L/∂W = Σ xᵢ ⊗ gᵢ.
  assertAlmostEquals(losses[0], Math.log(2), 1e-6);
  const got = await w.data();
  [0.125, -0.125, -0.25, 0.25].forEach((e, i) => assertAlmostEquals(got[i], e, 1e-6));
  assertEquals([...await b.data()], [0, 0]);
  tf.dispose([w, b]);

  // Five head outputs, three classes on columns 4, 0, 2: the others stay bit-identical.
  const rng = new Rng(1);
  const classes: ClassGaussian[] = [[2, 0, 0], [0, 2, 0], [0, 0, 2]].map((m) => ({
    mean: Float32Array.from(m),
    cov: Float32Array.from([0.3, 0, 0, 0, 0.3, 0, 0, 0, 0.3]),
    count: 10,
  }));
  const init = Float32Array.from({ length: 15 }, () => rng.normal() * 0.1);
  const w5 = tf.tidy(() => tf.variable(tf.tensor2d(init, [3, 5])));
  const b5 = tf.tidy(() => tf.variable(tf.zeros([5])));
  const l5 = await alignHead(
    { variables: [w5, b5], logits: (f) => tf.add(tf.matMul(f, w5), b5) as tf.Tensor2D },
    {
      gaussians: classes,
      columns: [4, 0, 2],
      schedule: {
        epochs: 10,
        samplesPerClass: 32,
        batchSize: 16,
        lr: 0.05,
        momentum: 0.9,
        weightDecay: 0,
      },
      rng,
    },
  );
  assertEquals(l5.length, 10);
  assert(l5[9] < 0.2 * l5[0], `loss ${l5[0]} → ${l5[9]}`);
  const after = await w5.data();
  for (let r = 0; r < 3; r++) {
    for (const col of [1, 3]) assertEquals(after[r * 5 + col], init[r * 5 + col]);
    assert(after[r * 5 + 4] !== init[r * 5 + 4]);
  }
  tf.dispose([w5, b5]);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("classifier alignment raises the old classes' accuracy of a head trained only on the new task", async () => {
  await initBackend("cpu");
  const g = (mean: number[]): ClassGaussian => ({
    mean: Float32Array.from(mean),
    cov: Float32Array.from([0.25, 0, 0, 0.25]),
    count: 50,
  });
  // Task 1: classes 0 (−3, 0) and 1 (0, −3); task 2: classes 2 (3, 0) and 3 (0, 3).
  const gaussians = [g([-3, 0]), g([0, -3]), g([3, 0]), g([0, 3])];
  // The head after training task 2 alone: new classes' columns learned, old ones at their
  // (small) values, old-class features fall to whichever new class is less negative.
  const w = tf.variable(tf.tensor2d([[0, 0, 2, 0], [0, 0, 0, 2]]));
  const b = tf.variable(tf.tensor1d([0, 0, 0, 0]));
  const head = {
    variables: [w, b],
    logits: (f: tf.Tensor2D) => tf.add(tf.matMul(f, w), b) as tf.Tensor2D,
  };
  const test = createGaussianSampler(gaussians.slice(0, 2), { dim: 2 });
  const accuracyOld = () =>
    tf.tidy(() => {
      const x = test.sample(200, 99); // 200 of class 0, then 200 of class 1
      const pred = tf.argMax(head.logits(x), 1).dataSync();
      let ok = 0;
      for (let i = 0; i < 400; i++) if (pred[i] === (i < 200 ? 0 : 1)) ok++;
      return ok / 400;
    });
  const before = accuracyOld();
  await alignHead(head, {
    gaussians,
    columns: [0, 1, 2, 3],
    schedule: {
      epochs: 10,
      samplesPerClass: 64,
      batchSize: 64,
      lr: 0.05,
      momentum: 0.9,
      weightDecay: 0,
    },
    rng: new Rng(4),
  });
  const after = accuracyOld();
  assert(before < 0.6, `before alignment ${before}`);
  assert(after > 0.95, `after alignment ${after}`);
  test.dispose();
  tf.dispose([w, b]);
});
