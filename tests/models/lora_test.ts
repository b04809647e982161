import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createLoraSite, dropoutMask, loraDelta, loraScale } from "../../lib/models/lora.ts";
import { Rng } from "../../lib/random.ts";
import { assertArrayAlmostEquals } from "../helpers.ts";

const LORA = { rank: 2, alpha: 4, dropout: 0 };

Deno.test("loraScale is alpha / rank", () => {
  assertEquals(loraScale({ rank: 8, alpha: 32, dropout: 0.1 }), 4);
  assertEquals(loraScale({ rank: 4, alpha: 1, dropout: 0 }), 0.25);
  assertThrows(() => loraScale({ rank: 0, alpha: 1, dropout: 0 }), Error, "rank");
});

Deno.test("createLoraSite: A ~ U(±1/sqrt(dIn)) from the rng, B = 0, unique variable names", async () => {
  await initBackend("cpu");
  const s1 = createLoraSite("blocks.0.attn.q", { dIn: 16, dOut: 8, lora: LORA, rng: new Rng(3) });
  const s2 = createLoraSite("blocks.0.attn.q", { dIn: 16, dOut: 8, lora: LORA, rng: new Rng(3) });
  assertEquals(s1.a.shape, [2, 16]);
  assertEquals(s1.b.shape, [8, 2]);
  assertNotEquals(s1.a.name, s2.a.name); // two models can coexist
  const a1 = await s1.a.data();
  assertEquals(Array.from(a1), Array.from(await s2.a.data())); // same seed, same A
  const bound = 1 / Math.sqrt(16);
  assert(a1.every((v) => Math.abs(v) <= bound));
  assert(Math.max(...a1) > bound / 2 && Math.min(...a1) < -bound / 2);
  // The first value is the first draw of the generator, scaled to [-bound, bound).
  const r = new Rng(3);
  assertAlmostEquals(a1[0], r.uniform(-bound, bound), 1e-7);
  assert((await s1.b.data()).every((v) => v === 0));
  assert(s1.a.trainable && s1.b.trainable);
  tf.dispose([s1.a, s1.b, s2.a, s2.b]);
});

Deno.test("loraDelta: hand-computed 2×3 example", async () => {
  await initBackend("cpu");
  const site = createLoraSite("q", { dIn: 3, dOut: 2, lora: LORA, rng: new Rng(0) });
  site.a.assign(tf.tensor2d([[1, 0, -1], [0.5, 0.5, 0]]));
  site.b.assign(tf.tensor2d([[1, 2], [0, -1]]));
  const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  // x·Aᵀ = [[-2, 1.5], [-2, 4.5]]; ·Bᵀ = [[1, -1.5], [7, -4.5]]; × s = 4/2 = 2.
  const y = loraDelta(x, site, { scale: loraScale(LORA), dropout: 0, training: true });
  assertEquals(y.shape, [2, 2]);
  assertArrayAlmostEquals(await y.data(), [2, -3, 14, -9], 1e-5);
  tf.dispose([x, y, site.a, site.b]);
});

Deno.test("loraDelta at init: zero output, zero gradient for A, non-zero gradient for B", async () => {
  await initBackend("cpu");
  const site = createLoraSite("q", { dIn: 4, dOut: 3, lora: LORA, rng: new Rng(1) });
  const x = tf.tensor2d([[1, -2, 0.5, 3], [0, 1, 2, -1]]);
  const target = tf.tensor2d([[1, 0, -1], [2, 1, 0]]);
  const y = loraDelta(x, site, { scale: 2, dropout: 0, training: true });
  assert((await y.data()).every((v) => v === 0));
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(
    () => tf.sum(tf.mul(loraDelta(x, site, { scale: 2, dropout: 0, training: true }), target)),
    [site.a, site.b],
  );
  const ga = await grads[site.a.name].data();
  const gb = await grads[site.b.name].data();
  assert(ga.every((v) => v === 0), "dL/dA must be 0 while B = 0");
  assert(gb.some((v) => Math.abs(v) > 1e-3), "dL/dB must be non-zero");
  // dL/dB = s · targetᵀ · (x·Aᵀ): check one entry by hand.
  const a = await site.a.data();
  const xa = (row: number[], k: number) => row.reduce((s, v, j) => s + v * a[k * 4 + j], 0);
  const expectB00 = 2 * (1 * xa([1, -2, 0.5, 3], 0) + 2 * xa([0, 1, 2, -1], 0));
  assertAlmostEquals(gb[0], expectB00, 1e-5);
  tf.dispose([value, grads[site.a.name], grads[site.b.name]]);
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, target, y, site.a, site.b]);
});

Deno.test("loraDelta dropout: only when training, deterministic per seed, inverted scaling", async () => {
  await initBackend("cpu");
  const site = createLoraSite("q", { dIn: 64, dOut: 2, lora: LORA, rng: new Rng(2) });
  site.b.assign(tf.ones([2, 2]));
  const x = tf.ones([8, 64]) as tf.Tensor2D;
  const run = async (training: boolean, seed?: number) => {
    const y = loraDelta(x, site, { scale: 1, dropout: 0.5, training, seed });
    const v = await y.data();
    y.dispose();
    return Array.from(v);
  };
  const clean = await run(false);
  assertEquals(await run(false, 5), clean);
  const d1 = await run(true, 5);
  assertEquals(await run(true, 5), d1);
  assertNotEquals(await run(true, 6), d1);
  assertNotEquals(d1, clean);
  // The dropped input itself: entries are 0 or 1 / (1 - p) = 2, about half each.
  const m = await tf.dropout(x, 0.5, undefined, 5).data();
  assert(m.every((v) => v === 0 || v === 2));
  const kept = m.filter((v) => v === 2).length / m.length;
  assert(kept > 0.4 && kept < 0.6, `kept fraction ${kept}`);
  assertThrows(
    () => loraDelta(x, site, { scale: 1, dropout: 0.5, training: true }),
    Error,
    "needs a seed",
  );
  assertThrows(
    () =>
      loraDelta(tf.ones([2, 3]) as tf.Tensor2D, site, { scale: 1, dropout: 0, training: false }),
    Error,
    "expected x [N, 64]",
  );
  tf.dispose([x, site.a, site.b]);
});

Deno.test("dropoutMask: entries 0 or 1/(1 − p) at the right rate, the same per seed", async () => {
  await initBackend("cpu");
  const before = tf.memory().numTensors;
  const values = (shape: [number, number], rate: number, seed: number) => {
    const m = dropoutMask(shape, rate, seed);
    const v = Array.from(m.dataSync());
    m.dispose();
    return v;
  };
  const a = values([64, 100], 0.1, 42);
  assertEquals(values([64, 100], 0.1, 42), a);
  assertNotEquals(values([64, 100], 0.1, 43), a);
  const kept = Math.fround(1 / 0.9);
  assert(a.every((v) => v === 0 || v === kept));
  const dropped = a.filter((v) => v === 0).length / a.length;
  assert(dropped > 0.08 && dropped < 0.12, `dropped fraction ${dropped}`);
  assert(values([3, 5], 0, 1).every((v) => v === 1));
  assertThrows(() => dropoutMask([2, 2], 1, 1), Error, "rate");
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("loraDelta's fused gradient equals tfjs's autodiff of s·((x ⊙ mask)·Aᵀ)·Bᵀ", () => {
  const rng = new Rng(21);
  const [n, dIn, dOut, r] = [5, 6, 4, 3];
  const site = createLoraSite("fused", {
    dIn,
    dOut,
    lora: { rank: r, alpha: 6, dropout: 0.25 },
    rng,
  });
  // B is zero at init; give it values so every gradient is non-trivial.
  site.b.assign(tf.randomNormal([dOut, r], 0, 1, "float32", 3));
  const x = tf.randomNormal([n, dIn], 0, 1, "float32", 4) as tf.Tensor2D;
  const w = tf.randomNormal([n, dOut], 0, 1, "float32", 5); // cotangent: loss = Σ w ⊙ Δ
  for (const training of [false, true]) {
    const opts = { scale: 2, dropout: 0.25, training, seed: 99 };
    const mask = training ? dropoutMask([n, dIn], 0.25, 99) : tf.ones([n, dIn]);
    const fused = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => {
      void a;
      void b;
      return loraDelta(xx as tf.Tensor2D, site, opts);
    };
    const plain = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor) =>
      tf.matMul(tf.matMul(tf.mul(xx, mask), tf.transpose(a)), tf.mul(tf.transpose(b), 2));
    const lossOf = (fn: typeof plain) => () =>
      tf.sum(tf.mul(fn(x, site.a, site.b), w)) as tf.Scalar;
    const gF = tf.variableGrads(lossOf(fused), [site.a, site.b]);
    const gP = tf.variableGrads(lossOf(plain), [site.a, site.b]);
    assertArrayAlmostEquals(Array.from(gF.value.dataSync()), Array.from(gP.value.dataSync()), 1e-5);
    for (const name of [site.a.name, site.b.name]) {
      assertArrayAlmostEquals(
        Array.from(gF.grads[name].dataSync()),
        Array.from(gP.grads[name].dataSync()),
        1e-5,
      );
    }
    const [dxF] = tf.grads((xx) => tf.sum(tf.mul(fused(xx, site.a, site.b), w)))([x]);
    const [dxP] = tf.grads((xx) => tf.sum(tf.mul(plain(xx, site.a, site.b), w)))([x]);
    assertArrayAlmostEquals(Array.from(dxF.dataSync()), Array.from(dxP.dataSync()), 1e-5);
    tf.dispose([
      gF.value,
      gP.value,
      ...Object.values(gF.grads),
      ...Object.values(gP.grads),
      dxF,
      dxP,
      mask,
    ]);
  }
  tf.dispose([x, w, site.a, site.b]);
});
