import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createInfLora, designA, maxOverlap, updateMemory } from "../../lib/methods/inflora.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { Rng } from "../../lib/random.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { CONFIG, microModel, silentRecorder, stream } from "./helpers.ts";

Deno.test("inflora linear algebra: memory by energy, A in the complement", () => {
  // C = diag(9, 4, 1, 0): energies 81, 16, 1 (InfLoRA's S² of C).
  const c = Float64Array.from([9, 0, 0, 0, 0, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
  const m: Float64Array[] = [];
  assertEquals(updateMemory(m, c, { threshold: 0.8 }), 1); // 81/98 ≥ 0.8 → e₀ only
  assertAlmostEquals(Math.abs(m[0][0]), 1, 1e-12);
  const a = designA(c, m, { rank: 2, divisor: 1 });
  assertEquals(maxOverlap(a, m, 4) < 1e-12, true);
  assertAlmostEquals(Math.abs(a[1]), 1, 1e-6); // e₁, then e₂
  assertAlmostEquals(Math.abs(a[4 + 2]), 1, 1e-6);
  // Later tasks add directions until the captured energy reaches the threshold.
  assertEquals(updateMemory(m, c, { threshold: 0.99 }), 2);
});

Deno.test("inflora: the new A is orthogonal to the old-input memory; only B trains", async () => {
  await initBackend("wasm");
  const s = stream(2);
  const model = microModel(s.classOrder.length, 0.1);
  const inner = createInfLora({ lamb: 0.9 });
  const sites = model.loraSites();
  const read = () =>
    Promise.all(sites.flatMap((x) => [x.a.data(), x.b.data()])) as Promise<Float32Array[]>;
  let memoryAfterTask0: Record<string, { shape: number[]; data: Float32Array }> = {};
  const snapshots: Record<string, Float32Array[]> = {};
  const method: ContinualMethod = {
    ...inner,
    afterStep: async (ctx, info) => {
      await inner.afterStep!(ctx, info);
      if (ctx.epoch === 0 && ctx.step === 0) snapshots[`probe${ctx.taskIndex}`] = await read();
    },
    endTask: async (ctx) => {
      await inner.endTask(ctx);
      snapshots[`end${ctx.taskIndex}`] = await read();
      if (ctx.taskIndex === 0) memoryAfterTask0 = inner.state().arrays;
    },
  };
  const before = tf.memory().numTensors;
  await trainClassIncremental(s, {
    model,
    method,
    config: { ...CONFIG, epochs: 2 },
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: silentRecorder(),
  });
  const d = sites[0].dIn;
  sites.forEach((site, i) => {
    const mem = memoryAfterTask0[`memory/${site.name}`];
    assert(mem.shape[0] > 0 && mem.shape[0] < d, `memory of ${site.name}: ${mem.shape}`);
    const rows = Array.from(
      { length: mem.shape[0] },
      (_, k) => Float64Array.from(mem.data.subarray(k * d, (k + 1) * d)),
    );
    const a1 = snapshots.end1[2 * i];
    assert(maxOverlap(a1, rows, d) < 1e-5, `A of task 2 at ${site.name} overlaps the memory`);
    // Rows of A have norm 1/√3 (the released code's scaling) unless the complement ran out.
    let n0 = 0;
    for (let j = 0; j < d; j++) n0 += a1[j] ** 2;
    assertAlmostEquals(n0, 1 / 3, 1e-5);
    for (const t of [0, 1]) {
      // After the probe step A is fixed and B = 0 (the probe does not move B) …
      assertEquals(snapshots[`end${t}`][2 * i], snapshots[`probe${t}`][2 * i]);
      assert(snapshots[`probe${t}`][2 * i + 1].every((v) => v === 0));
      // … and afterwards B moves.
      assert(snapshots[`end${t}`][2 * i + 1].some((v) => v !== 0));
    }
    // Task 1's adapter is frozen in the pool, bit-identical.
    assertEquals(site.pool!.length, 1);
  });
  const pooled = await Promise.all(
    sites.flatMap((x) => [x.pool![0].a.data(), x.pool![0].b.data()]),
  );
  pooled.forEach((p, i) => assertEquals(p, snapshots.end0[i]));
  assertEquals(sites.every((x) => x.recordInput === undefined), true);
  inner.dispose();
  assertEquals(tf.memory().numTensors, before);
  model.dispose();
});
