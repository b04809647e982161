import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals } from "@std/assert";
import { createAdam, optimizerStep } from "../../lib/train/step.ts";
import { initBackend } from "../../lib/run/backend.ts";
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
  // FlatAdam (createAdam on cpu/wasm) keeps its moments in plain arrays: no tensors.
  assertEquals(afterFirst - before, 0);
  opt.dispose();
  w.dispose();
});

Deno.test("optimizerStep with tfjs's Adam (the GPU backends' path): the same step, m and v as tensors", async () => {
  await tf.setBackend("cpu");
  const w = tf.variable(tf.tensor1d([3, 5]));
  const opt = tf.train.adam(0.1, 0.9, 0.999, 1e-8);
  const before = tf.memory().numTensors;
  const r = await optimizerStep([w], () => ({
    total: tf.sum(tf.square(tf.sub(w, 1))) as tf.Scalar,
    terms: {},
  }), { optimizer: opt, clipNorm: 1 });
  assertAlmostEquals(r.gradNorm, Math.sqrt(80), 1e-4);
  const v = await w.data();
  assertAlmostEquals(v[0], 2.9, 1e-4);
  assertAlmostEquals(v[1], 4.9, 1e-4);
  assertEquals(tf.memory().numTensors - before, 2); // Adam's m and v slots for w
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

Deno.test("optimizerStep: tapped terms give their own gradients and the task gradient in one backward pass", async () => {
  await initBackend("cpu");
  const w = tf.variable(tf.tensor1d([1, -2, 3]));
  const u = tf.variable(tf.tensor1d([0.5]));
  const sgd = tf.train.sgd(0);
  const before = tf.memory().numTensors;
  // task = Σ w²·u  (∂w = 2wu, ∂u = Σw²);  pen = 3·Σ (w − 1)² on a tap (∂w = 6(w − 1)).
  const r = await optimizerStep([w, u], (tap) => {
    const task = tf.mul(tf.sum(tf.square(w)), u.reshape([])) as tf.Scalar;
    const pen = tf.mul(tf.sum(tf.square(tf.sub(tap.through("pen", w), 1))), 3) as tf.Scalar;
    return { total: tf.add(task, pen) as tf.Scalar, terms: { task, pen } };
  }, { optimizer: sgd, clipNorm: 0, readGradients: [w, u] });
  assertEquals([...r.gradients[0]], [1 + 0, -2 - 18, 3 + 12]);
  assertEquals([...r.taskGradients[0]], [1, -2, 3]);
  assertEquals([...r.termGradients.pen[0]], [0, -18, 12]);
  assertEquals([...r.termGradients.pen[1]], [0], "the tap does not reach u");
  assertEquals([...r.taskGradients[1]], [14]);
  assertEquals(tf.memory().numTensors, before);
  // Nothing tapped: the task gradients are the gradients.
  const plain = await optimizerStep([w], () => {
    const t = tf.sum(tf.square(w)) as tf.Scalar;
    return { total: t, terms: {} };
  }, { optimizer: sgd, clipNorm: 0, readGradients: [w] });
  assertEquals(plain.taskGradients, plain.gradients);
  assertEquals(plain.termGradients, {});
  sgd.dispose();
  tf.dispose([w, u]);
});
