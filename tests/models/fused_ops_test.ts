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
import { createAdam } from "../../lib/train/step.ts";
import { isFlatAdam } from "../../lib/train/flat_adam.ts";
import type { Tensor3D } from "../../lib/tensor.ts";

async function attentionAndGrads(): Promise<{ out: number[]; grads: number[][]; kernels: number }> {
  const q = tf.tensor3d([[[1, 0], [0.5, -1]]]);
  const kT = tf.tensor3d([[[0.2, -0.3, 1], [0.7, 0.1, -0.5]]]);
  const v = tf.tensor3d([[[1, 2], [3, -1], [0, 0.5]]]);
  const f = (...t: tf.Tensor[]) =>
    tf.sum(
      tf.mul(
        attentionCore(t[0] as Tensor3D, t[1] as Tensor3D, t[2] as Tensor3D, { scale: 0.7 }),
        tf.tensor3d([[[1, -2], [0.5, 3]]]),
      ),
    );
  const out = Array.from(await attentionCore(q, kT, v, { scale: 0.7 }).data());
  const profile = await tf.profile(() => tf.grads(f)([q, kT, v]));
  const grads = await Promise.all(
    tf.grads(f)([q, kT, v]).map(async (g) => Array.from(await g.data())),
  );
  return { out, grads, kernels: profile.kernels.length };
}

Deno.test("fused ops: on by default; off, the same attention values and gradients, and tf.train.adam", async () => {
  await initBackend("cpu");
  assertEquals(fusedOps(), true);
  const fusedAdam = createAdam({ lr: 1e-3 });
  assert(isFlatAdam(fusedAdam));
  fusedAdam.dispose();
  const fused = await attentionAndGrads();
  setFusedOps(false);
  try {
    const plain = await attentionAndGrads();
    const close = (a: number[], b: number[]) =>
      a.forEach((x, i) => assert(Math.abs(x - b[i]) <= 1e-6, `${x} vs ${b[i]}`));
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
});
