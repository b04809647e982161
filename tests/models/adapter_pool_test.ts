import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { addPoolAdapter, clearPool, TaskAdapters } from "../../lib/models/adapter_pool.ts";
import {
  createLoraSite,
  LIVE_ADAPTER,
  loraDelta,
  withActiveAdapter,
} from "../../lib/models/lora.ts";
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
  assertEquals([pool.has("task0"), pool.has("task1")], [true, false]);
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

Deno.test("withActiveAdapter: one adapter alone (live, pooled or none), nested, restored after a throw", async () => {
  await initBackend("cpu");
  const site = createLoraSite("q", { dIn: 3, dOut: 2, lora: LORA, rng: new Rng(0) });
  const other = createLoraSite("v", { dIn: 3, dOut: 2, lora: LORA, rng: new Rng(1) });
  site.b.assign(tf.tensor2d([[1, 2], [0, -1]]));
  const x = tf.tensor2d([[1, 2, 3], [-1, 0, 2]]);
  const opts = { scale: 2, dropout: 0, training: false };
  const delta = async (s = site) => {
    const d = loraDelta(x, s, opts);
    const v = await d.data();
    d.dispose();
    return [...v];
  };
  const live = await delta();
  addPoolAdapter(site, "old", {
    rank: 1,
    a: Float32Array.from([1, 0, -1]),
    b: Float32Array.from([2, 3]),
    trainable: false,
  });
  const summed = await delta();
  // The pooled adapter alone: 2·(x·a1)·b1ᵀ with x·a1 = [-2, -3].
  const old = [-8, -12, -12, -18];
  summed.forEach((v, i) => assertAlmostEquals(v, live[i] + old[i], 1e-5));
  // The selection applies while fn runs the pass; the values are read afterwards.
  const sync = (adapter: string | null) =>
    withActiveAdapter([site], () => loraDelta(x, site, opts), { adapter });
  for (
    const [adapter, expected] of [[LIVE_ADAPTER, live], ["old", old], [null, [0, 0, 0, 0]]] as const
  ) {
    const d = sync(adapter);
    (await d.data()).forEach((v, i) => assertAlmostEquals(v, expected[i], 1e-5));
    d.dispose();
  }
  // Nested: the inner choice wins inside, the outer one is back afterwards; other sites unaffected.
  const nested = withActiveAdapter([site], () => {
    const inner = withActiveAdapter([site], () => loraDelta(x, site, opts), { adapter: null });
    const outer = loraDelta(x, site, opts);
    return [inner, outer];
  }, { adapter: "old" });
  assertEquals([...await nested[0].data()], [0, 0, 0, 0]);
  (await nested[1].data()).forEach((v, i) => assertAlmostEquals(v, old[i], 1e-5));
  tf.dispose(nested);
  const otherDelta = await delta(other);
  const otherInside = withActiveAdapter([site], () => loraDelta(x, other, opts), { adapter: null });
  assertEquals([...await otherInside.data()], otherDelta);
  otherInside.dispose();
  // Unknown names throw, and the selection does not outlive the throw.
  assertThrows(() => sync("missing"), Error, 'no pool adapter "missing"');
  assertEquals(await delta(), summed);
  assertThrows(
    () => withActiveAdapter([site], () => Promise.resolve(1), { adapter: null }),
    Error,
    "synchronous",
  );
  // "live" is reserved for the site's own adapter.
  assertThrows(
    () =>
      addPoolAdapter(site, LIVE_ADAPTER, {
        rank: 1,
        a: new Float32Array(3),
        b: new Float32Array(2),
        trainable: false,
      }),
    Error,
    "own adapter",
  );
  clearPool(site);
  tf.dispose([x, site.a, site.b, other.a, other.b]);
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
