import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import {
  geluTanh,
  layerNorm,
  linear,
  multiHeadAttention,
  rmsNorm,
  silu,
  siteSeed,
} from "../../lib/models/layers.ts";
import { Rng } from "../../lib/random.ts";
import { assertArrayAlmostEquals } from "../helpers.ts";

function randn(n: number, rng: Rng): number[] {
  return Array.from({ length: n }, () => rng.normal());
}

Deno.test("geluTanh matches PyTorch's tanh formula", async () => {
  await initBackend("cpu");
  const xs = [-3, -1, -0.5, 0, 0.1, 1, 2.5];
  const y = await geluTanh(tf.tensor1d(xs)).data();
  xs.forEach((x, i) => {
    const ref = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    assertAlmostEquals(y[i], ref, 1e-6);
  });
});

Deno.test("layerNorm normalises the last axis, then applies gain and shift", async () => {
  await initBackend("cpu");
  const p = {
    weight: tf.variable(tf.tensor1d([1, 2, 1, 1])),
    bias: tf.variable(tf.tensor1d([0, 0, 0, 1])),
  };
  const y = await layerNorm(tf.tensor2d([[1, 2, 3, 4]]), p, { eps: 0 }).data();
  // mean 2.5, var 1.25
  const s = Math.sqrt(1.25);
  [(1 - 2.5) / s, 2 * (2 - 2.5) / s, (3 - 2.5) / s, (4 - 2.5) / s + 1].forEach((v, i) =>
    assertAlmostEquals(y[i], v, 1e-5)
  );
  tf.dispose([p.weight, p.bias]);
});

Deno.test("linear uses the PyTorch [out, in] layout", async () => {
  await initBackend("cpu");
  const p = {
    weight: tf.variable(tf.tensor2d([[1, 0, 2], [0, 1, -1]])),
    bias: tf.variable(tf.tensor1d([1, 0])),
  };
  assertEquals(Array.from(await linear(tf.tensor2d([[1, 2, 3]]), p).data()), [8, -1]);
  tf.dispose([p.weight, p.bias]);
});

/** Multi-head attention in plain loops: x rows are (batch, token), heads split the width. */
function naiveAttention(
  q: number[],
  k: number[],
  v: number[],
  b: number,
  t: number,
  dim: number,
  heads: number,
  causal: boolean,
): number[] {
  const dh = dim / heads;
  const out = new Array(b * t * dim).fill(0);
  for (let n = 0; n < b; n++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < t; i++) {
        const scores: number[] = [];
        for (let j = 0; j < t; j++) {
          let s = 0;
          for (let d = 0; d < dh; d++) {
            s += q[(n * t + i) * dim + h * dh + d] * k[(n * t + j) * dim + h * dh + d];
          }
          scores.push(causal && j > i ? -Infinity : s / Math.sqrt(dh));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < t; j++) {
          for (let d = 0; d < dh; d++) {
            out[(n * t + i) * dim + h * dh + d] += (e[j] / z) * v[(n * t + j) * dim + h * dh + d];
          }
        }
      }
    }
  }
  return out;
}

Deno.test("multiHeadAttention equals a naive per-head loop (plain and causal)", async () => {
  await initBackend("cpu");
  const rng = new Rng(11);
  const [b, t, dim, heads] = [2, 5, 6, 3];
  const q = randn(b * t * dim, rng), k = randn(b * t * dim, rng), v = randn(b * t * dim, rng);
  for (const causal of [false, true]) {
    const y = tf.tidy(() =>
      multiHeadAttention(
        {
          q: tf.tensor2d(q, [b * t, dim]),
          k: tf.tensor2d(k, [b * t, dim]),
          v: tf.tensor2d(v, [b * t, dim]),
        },
        {
          batch: b,
          tokens: t,
          heads,
          causal,
        },
      )
    );
    const got = await y.data();
    y.dispose();
    const ref = naiveAttention(q, k, v, b, t, dim, heads, causal);
    let maxDiff = 0;
    ref.forEach((r, i) => (maxDiff = Math.max(maxDiff, Math.abs(r - got[i]))));
    assert(maxDiff < 1e-5, `causal=${causal}: max diff ${maxDiff}`);
  }
});

Deno.test("siteSeed gives distinct, reproducible per-site seeds", () => {
  assertEquals(siteSeed(undefined, 0), undefined);
  assertEquals(siteSeed(42, 3), siteSeed(42, 3));
  const seeds = new Set(Array.from({ length: 100 }, (_, i) => siteSeed(42, i)));
  assertEquals(seeds.size, 100);
});

/** Max |a − b| / max(1, |b|) over two arrays. */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  }
  return m;
}

Deno.test("geluTanh's custom gradient matches tf.grad of the plain composite (cpu)", async () => {
  await initBackend("cpu");
  const rng = new Rng(11);
  const x = tf.tensor2d(randn(6 * 40, rng).map((v) => 3 * v), [6, 40]);
  const dy = tf.tensor2d(randn(6 * 40, rng), [6, 40]);
  const c = 2 * Math.sqrt(2 / Math.PI);
  const plain = (t: tf.Tensor) =>
    tf.mul(t, tf.sigmoid(tf.mul(t, tf.add(tf.mul(tf.square(t), c * 0.044715), c))));
  const [yCustom, yPlain] = [geluTanh(x), plain(x)];
  assertEquals(Array.from(await yCustom.data()), Array.from(await yPlain.data()));
  const gCustom = tf.grad((t) => geluTanh(t))(x, dy);
  const gPlain = tf.grad((t) => plain(t))(x, dy);
  assert(maxRelDiff(await gCustom.data(), await gPlain.data()) < 1e-5);
  tf.dispose([x, dy, yCustom, yPlain, gCustom, gPlain]);
});

Deno.test("layerNorm's custom gradient matches tf.grads of the plain composite (cpu)", async () => {
  await initBackend("cpu");
  const rng = new Rng(12);
  const x = tf.tensor3d(randn(2 * 5 * 16, rng).map((v) => 2 * v + 0.5), [2, 5, 16]);
  const dy = tf.tensor3d(randn(2 * 5 * 16, rng), [2, 5, 16]);
  const gain = tf.tensor1d(randn(16, rng).map((v) => 1 + 0.3 * v));
  const shift = tf.tensor1d(randn(16, rng));
  const eps = 1e-6;
  const plain = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(t, -1, true);
    const normed = tf.mul(tf.sub(t, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, g), b);
  };
  const custom = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    layerNorm(t, { weight: g as tf.Variable, bias: b as tf.Variable }, { eps });
  const yc = custom(x, gain, shift);
  const yp = plain(x, gain, shift);
  assertEquals(Array.from(await yc.data()), Array.from(await yp.data()));
  const gc = tf.grads(custom)([x, gain, shift], dy);
  const gp = tf.grads(plain)([x, gain, shift], dy);
  for (let i = 0; i < 3; i++) {
    assertEquals(gc[i].shape, gp[i].shape);
    const d = maxRelDiff(await gc[i].data(), await gp[i].data());
    assert(d < 1e-5, `input ${i}: ${d}`);
  }
  tf.dispose([x, dy, gain, shift, yc, yp, ...gc, ...gp]);
});

Deno.test("rmsNorm and silu: values and gradients equal tfjs's autodiff of the compositions", () => {
  const x = tf.randomNormal([3, 5], 0, 2, "float32", 11);
  const w = tf.randomNormal([5], 1, 0.1, "float32", 12);
  const cot = tf.randomNormal([3, 5], 0, 1, "float32", 13);
  const plainRms = (t: tf.Tensor, g: tf.Tensor) =>
    tf.mul(tf.mul(t, tf.rsqrt(tf.add(tf.mean(tf.square(t), -1, true), 1e-5))), g);
  const plainSilu = (t: tf.Tensor) => tf.mul(t, tf.sigmoid(t));
  const close = (a: tf.Tensor, b: tf.Tensor, tol: number) =>
    assertArrayAlmostEquals(Array.from(a.dataSync()), Array.from(b.dataSync()), tol);
  close(rmsNorm(x, w, { eps: 1e-5 }), plainRms(x, w), 1e-6);
  const gF = tf.grads((t, g) => tf.sum(tf.mul(rmsNorm(t, g, { eps: 1e-5 }), cot)))([x, w]);
  const gP = tf.grads((t, g) => tf.sum(tf.mul(plainRms(t, g), cot)))([x, w]);
  gF.forEach((g, i) => close(g, gP[i], 1e-5));
  close(silu(x), plainSilu(x), 1e-6);
  const [sF] = tf.grads((t) => tf.sum(tf.mul(silu(t), cot)))([x]);
  const [sP] = tf.grads((t) => tf.sum(tf.mul(plainSilu(t), cot)))([x]);
  close(sF, sP, 1e-5);
  tf.dispose([x, w, cot, ...gF, ...gP, sF, sP]);
});
