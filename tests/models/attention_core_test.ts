import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { attentionCore } from "../../lib/models/attention_core.ts";
import { initBackend } from "../../lib/run/backend.ts";
import { Rng } from "../../lib/random.ts";

await initBackend("cpu");

function randn(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng.normal()), shape);
}

/** The unfused composition, differentiated by tfjs's autodiff. */
function reference(
  q: tf.Tensor3D,
  kT: tf.Tensor3D,
  v: tf.Tensor3D,
  scale: number,
  bias?: tf.Tensor3D,
): tf.Tensor3D {
  let scores = tf.matMul(tf.mul(q, scale) as tf.Tensor3D, kT);
  if (bias) scores = tf.add(scores, bias);
  return tf.matMul(tf.softmax(scores, -1) as tf.Tensor3D, v);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test("attentionCore: values and the gradients of q, kᵀ and v equal the autodiff composition", () => {
  const rng = new Rng(7);
  const [n, tq, tk, d] = [3, 4, 6, 5];
  const q = randn(rng, [n, tq, d]) as tf.Tensor3D;
  const kT = randn(rng, [n, d, tk]) as tf.Tensor3D;
  const v = randn(rng, [n, tk, d]) as tf.Tensor3D;
  const w = randn(rng, [n, tq, d]); // a random cotangent: loss = Σ w ⊙ O
  // A causal-style bias: −1e9 above the diagonal (query i sees keys 0..i+2).
  const mask = new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) for (let j = i + 3; j < tk; j++) mask[i * tk + j] = -1e9;
  const bias = tf.tensor3d(mask, [1, tq, tk]);
  for (const withBias of [false, true]) {
    const scale = 1 / Math.sqrt(d);
    const fused = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      attentionCore(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, {
        scale,
        ...(withBias ? { addBias: (s: tf.Tensor3D) => tf.add(s, bias) as tf.Tensor3D } : {}),
      });
    const plain = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      reference(
        a as tf.Tensor3D,
        b as tf.Tensor3D,
        c as tf.Tensor3D,
        scale,
        withBias ? bias as tf.Tensor3D : undefined,
      );
    assert(maxAbsDiff(fused(q, kT, v), plain(q, kT, v)) < 1e-6, `values, bias ${withBias}`);
    const gFused = tf.grads((a, b, c) => tf.sum(tf.mul(fused(a, b, c), w)))([q, kT, v]);
    const gPlain = tf.grads((a, b, c) => tf.sum(tf.mul(plain(a, b, c), w)))([q, kT, v]);
    gFused.forEach((g, i) => {
      assertEquals(g.shape, gPlain[i].shape);
      assert(
        maxAbsDiff(g, gPlain[i]) < 1e-5,
        `gradient ${i}, bias ${withBias}: ${maxAbsDiff(g, gPlain[i])}`,
      );
    });
    tf.dispose([...gFused, ...gPlain]);
  }
  tf.dispose([q, kT, v, w, bias]);
});

Deno.test("attentionCore: a hand-computed case (two keys, one query) and its gradient", () => {
  // q = [1, 0], kᵀ columns k0 = [1, 0], k1 = [0, 0], scale 1: scores [1, 0],
  // P = [e/(e+1), 1/(e+1)], v rows [2, 0] and [0, 4]: O = [2e/(e+1), 4/(e+1)].
  const e = Math.E;
  const q = tf.tensor3d([[[1, 0]]]);
  const kT = tf.tensor3d([[[1, 0], [0, 0]]]);
  const v = tf.tensor3d([[[2, 0], [0, 4]]]);
  const o = attentionCore(q, kT, v, { scale: 1 });
  const expected = [2 * e / (e + 1), 4 / (e + 1)];
  o.dataSync().forEach((x, i) => assert(Math.abs(x - expected[i]) < 1e-6, `${x}`));
  // d(O₀)/dv = P ⊗ [1, 0]: dv = [[P0, 0], [P1, 0]].
  const [dv] = tf.grads((c) =>
    tf.sum(tf.mul(attentionCore(q, kT, c as tf.Tensor3D, { scale: 1 }), tf.tensor3d([[[1, 0]]])))
  )([v]);
  const p0 = e / (e + 1);
  Array.from(dv.dataSync()).forEach((x, i) => {
    assert(Math.abs(x - [p0, 0, 1 - p0, 0][i]) < 1e-6, `dv[${i}] = ${x}`);
  });
  tf.dispose([q, kT, v, o, dv]);
});

Deno.test("attentionCore: shapes that do not fit are errors naming them", () => {
  const q = tf.zeros([2, 3, 4]) as tf.Tensor3D;
  assertThrows(
    () =>
      attentionCore(q, tf.zeros([2, 5, 6]) as tf.Tensor3D, tf.zeros([2, 6, 4]) as tf.Tensor3D, {
        scale: 1,
      }),
    Error,
    "does not fit kᵀ",
  );
  assertThrows(
    () =>
      attentionCore(q, tf.zeros([2, 4, 6]) as tf.Tensor3D, tf.zeros([2, 5, 4]) as tf.Tensor3D, {
        scale: 1,
      }),
    Error,
    "v [2,5,4]",
  );
  q.dispose();
});
