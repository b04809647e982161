/**
 * lib/models/fused_ops.ts: the switch is on by default; off, attention is the plain
 * composition (same values and gradients to float32 rounding, more kernels on the tape) and
 * createAdam returns tf.train.adam instead of FlatAdam.
 */

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { fusedOps, setFusedOps } from "../../lib/models/fused_ops.ts";
import { attentionCore } from "../../lib/models/attention_core.ts";
import { multiHeadAttention } from "../../lib/models/layers.ts";
import { createAdam } from "../../lib/train/step.ts";
import { isFlatAdam } from "../../lib/train/flat_adam.ts";
import { Rng } from "../../lib/random.ts";
import type { Tensor2D, Tensor3D } from "../../lib/tensor.ts";

/** Values and input gradients of `f` at `inputs` (as arrays), and the backward pass's kernels. */
async function valueAndGrads(
  f: (...t: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
): Promise<{ out: number[]; grads: number[][]; kernels: number }> {
  const out = tf.tidy(() => f(...inputs));
  const profile = await tf.profile(() => {
    tf.dispose(tf.grads((...t: tf.Tensor[]) => tf.sum(f(...t)))(inputs));
  });
  const grads = tf.grads((...t: tf.Tensor[]) =>
    tf.sum(tf.mul(
      f(...t),
      tf.range(1, out.size + 1)
        .reshape(out.shape),
    ))
  )(inputs);
  const result = {
    out: Array.from(await out.data()),
    grads: await Promise.all(grads.map(async (g) => Array.from(await g.data()))),
    kernels: profile.kernels.length,
  };
  tf.dispose([out, ...grads]);
  return result;
}

function close(a: number[], b: number[], tol = 1e-6): void {
  assertEquals(a.length, b.length);
  a.forEach((x, i) => assert(Math.abs(x - b[i]) <= tol, `${i}: ${x} vs ${b[i]}`));
}

Deno.test("fused ops: on by default; off, the same attention values and gradients, and tf.train.adam", async () => {
  await initBackend("cpu");
  assertEquals(fusedOps(), true);
  const fusedAdam = createAdam({ lr: 1e-3 });
  assert(isFlatAdam(fusedAdam));
  fusedAdam.dispose();
  const inputs = [
    tf.tensor3d([[[1, 0], [0.5, -1]]]),
    tf.tensor3d([[[0.2, -0.3, 1], [0.7, 0.1, -0.5]]]),
    tf.tensor3d([[[1, 2], [3, -1], [0, 0.5]]]),
  ];
  const before = tf.memory().numTensors;
  const f = (...t: tf.Tensor[]) =>
    attentionCore(t[0] as Tensor3D, t[1] as Tensor3D, t[2] as Tensor3D, { scale: 0.7 });
  const fused = await valueAndGrads(f, inputs);
  setFusedOps(false);
  try {
    const plain = await valueAndGrads(f, inputs);
    close(plain.out, fused.out);
    plain.grads.forEach((g, i) => close(g, fused.grads[i]));
    // The composition's tape runs more kernels than the fused op's written-out backward pass.
    assert(plain.kernels > fused.kernels, `${plain.kernels} vs ${fused.kernels}`);
    const adam = createAdam({ lr: 1e-3 });
    assert(!isFlatAdam(adam));
    adam.dispose();
  } finally {
    setFusedOps(true);
  }
  assertEquals(tf.memory().numTensors, before);
  tf.dispose(inputs);
});

Deno.test("fused ops: causal multi-head attention, fused and unfused, agree in values and gradients", async () => {
  await initBackend("cpu");
  const rng = new Rng(3);
  const [b, t, dim] = [2, 4, 8];
  const make = () =>
    tf.tensor2d(Float32Array.from({ length: b * t * dim }, () => rng.normal()), [b * t, dim]);
  const inputs = [make(), make(), make()];
  const before = tf.memory().numTensors;
  const f = (...x: tf.Tensor[]) =>
    multiHeadAttention({ q: x[0] as Tensor2D, k: x[1] as Tensor2D, v: x[2] as Tensor2D }, {
      batch: b,
      tokens: t,
      heads: 2,
      causal: true,
    });
  const fused = await valueAndGrads(f, inputs);
  setFusedOps(false);
  let plain;
  try {
    plain = await valueAndGrads(f, inputs);
  } finally {
    setFusedOps(true);
  }
  close(plain.out, fused.out, 1e-5);
  plain.grads.forEach((g, i) => close(g, fused.grads[i], 1e-4));
  assertEquals(tf.memory().numTensors, before);
  // Causality: the first token of each sequence attends to itself only, so its output is v's row.
  close(fused.out.slice(0, dim), Array.from(inputs[2].dataSync().slice(0, dim)), 1e-6);
  tf.dispose(inputs);
});
