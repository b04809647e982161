import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals } from "@std/assert";
import { createAdam, optimizerStep } from "../../lib/train/step.ts";
import { stopGradient } from "../../lib/models/stop_gradient.ts";

Deno.test("optimizerStep: clipped Adam step matches the hand computation", async () => {
  await tf.setBackend("cpu");
  // loss = (w - 1)^2 summed over w = [3, 5]: grad = [4, 8], |grad| = sqrt(80).
  const w = tf.variable(tf.tensor1d([3, 5]));
  const opt = createAdam({ lr: 0.1 });
  const before = tf.memory().numTensors;
  const r = await optimizerStep([w], () => {
    const d = tf.sub(w, 1);
    const loss = tf.sum(tf.square(d)) as tf.Scalar;
    return { total: loss, terms: { half: tf.mul(loss, 0.5) as tf.Scalar } };
  }, { optimizer: opt, clipNorm: 1 });
  assertAlmostEquals(r.total, 20, 1e-5);
  assertAlmostEquals(r.terms.half, 10, 1e-5);
  assertAlmostEquals(r.gradNorm, Math.sqrt(80), 1e-4);
  // Adam's first step moves each coordinate by lr * sign(g) (m/sqrt(v) = g/|g|), whatever the clip.
  const v = await w.data();
  assertAlmostEquals(v[0], 2.9, 1e-4);
  assertAlmostEquals(v[1], 4.9, 1e-4);
  // Adam creates its slot variables on the first step; a second step must leave the count unchanged.
  const afterFirst = tf.memory().numTensors;
  await optimizerStep([w], () => ({ total: tf.sum(tf.square(w)) as tf.Scalar, terms: {} }), {
    optimizer: opt,
    clipNorm: 0,
  });
  assertEquals(tf.memory().numTensors, afterFirst);
  assertEquals(afterFirst - before, 2); // Adam's m and v slots for w (beta powers exist from construction)
  opt.dispose();
  w.dispose();
});

Deno.test("stopGradient passes values and blocks gradients", async () => {
  await tf.setBackend("cpu");
  const g = tf.grad((v: tf.Tensor) => tf.mul(v, stopGradient(v)))(tf.scalar(3));
  assertEquals(Array.from(await g.data()), [3]);
  g.dispose();
});

Deno.test("optimizerStep: adjustGradients rewrites gradients before clipping and Adam", async () => {
  await tf.setBackend("cpu");
  const a = tf.variable(tf.tensor1d([1, 2]));
  const b = tf.variable(tf.tensor1d([3]));
  const opt = createAdam({ lr: 0.1 });
  const r = await optimizerStep([a, b], () => ({
    total: tf.add(tf.sum(tf.square(a)), tf.sum(tf.square(b))) as tf.Scalar,
    terms: {},
  }), {
    optimizer: opt,
    clipNorm: 0,
    // Project out b's gradient entirely (as GEM/OGD would project onto a subspace).
    adjustGradients: (g) => ({ ...g, [b.name]: tf.zerosLike(g[b.name]) }),
  });
  // Only a's gradient [2, 4] is left: norm sqrt(20).
  assertAlmostEquals(r.gradNorm, Math.sqrt(20), 1e-4);
  assertEquals(Array.from(await b.data()), [3]);
  const av = await a.data();
  assertAlmostEquals(av[0], 0.9, 1e-4);
  assertAlmostEquals(av[1], 1.9, 1e-4);
  opt.dispose();
  a.dispose();
  b.dispose();
});
