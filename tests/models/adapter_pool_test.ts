import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/backend.ts";
import { addPoolAdapter, clearPool, TaskAdapters } from "../../lib/models/adapter_pool.ts";
import { createLoraSite, loraDelta } from "../../lib/models/lora.ts";
import { Rng } from "../../lib/random.ts";
import { symmetricEigen } from "../../lib/methods/subspace.ts";

const LORA = { rank: 2, alpha: 4, dropout: 0 };

Deno.test("adapter pool: pooled adapters are summed; an empty pool is plain LoRA; recorder sees x", async () => {
  await initBackend("cpu");
  const site = createLoraSite("q", { dIn: 3, dOut: 2, lora: LORA, rng: new Rng(0) });
  site.b.assign(tf.tensor2d([[1, 2], [0, -1]]));
  const x = tf.tensor2d([[1, 2, 3], [-1, 0, 2]]);
  const opts = { scale: 2, dropout: 0, training: false };
  const plain = await loraDelta(x, site, opts).data();
  site.pool = [];
  assertEquals(await loraDelta(x, site, opts).data(), plain);
  const a1 = Float32Array.from([1, 0, -1]);
  const b1 = Float32Array.from([2, 3]);
  addPoolAdapter(site, "old", { rank: 1, a: a1, b: b1, trainable: false });
  assertThrows(
    () => addPoolAdapter(site, "old", { rank: 1, a: a1, b: b1, trainable: false }),
    Error,
    "already",
  );
  let seen = 0;
  site.recordInput = (t) => (seen += t.shape[0]);
  const pooled = await loraDelta(x, site, opts).data();
  // Extra term: 2·(x·a1)·b1ᵀ with x·a1 = [-2, -3].
  const extra = [-8, -12, -12, -18];
  pooled.forEach((v, i) => assertAlmostEquals(v, plain[i] + extra[i], 1e-5));
  assertEquals(seen, 2);
  clearPool(site);
  assertEquals(site.pool, []);
  tf.dispose([x, site.a, site.b]);
});

Deno.test("TaskAdapters: freeze, arrays, restore and re-attach", async () => {
  await initBackend("cpu");
  const site = createLoraSite("q", { dIn: 3, dOut: 2, lora: LORA, rng: new Rng(0) });
  const pool = new TaskAdapters();
  await pool.freezeLive([site], "task0");
  assertEquals(pool.count, 1);
  assertEquals(await site.pool![0].a.data(), await site.a.data());
  const arrays = pool.arrays();
  pool.dispose();
  assertEquals(site.pool, []);
  const again = new TaskAdapters();
  again.restore(arrays);
  again.attach([site]);
  assertEquals(await site.pool![0].a.data(), await site.a.data());
  again.dispose();
  tf.dispose([site.a, site.b]);
});

Deno.test("symmetricEigen: A·v = λ·v, descending", () => {
  const rng = new Rng(1);
  const n = 6;
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) m[i * n + j] = m[j * n + i] = rng.uniform(-1, 1);
  }
  const { values, vectors } = symmetricEigen(m, n);
  for (let k = 0; k < n; k++) {
    if (k > 0) assertEquals(values[k] <= values[k - 1], true);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += m[i * n + j] * vectors[k][j];
      assertAlmostEquals(s, values[k] * vectors[k][i], 1e-9);
    }
  }
});
