import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import {
  beginTaskAdapter,
  byGroup,
  featuresWith,
  taskAdapter,
} from "../../../lib/methods/hide_lora/adapters.ts";
import { TaskAdapters } from "../../../lib/models/adapter_pool.ts";
import { LIVE_ADAPTER, withActiveAdapter } from "../../../lib/models/lora.ts";
import { context, images, microModel } from "../helpers.ts";

Deno.test("taskAdapter: the live adapter for the newest task, task<k> for frozen ones, else an error", async () => {
  await initBackend("cpu");
  const pool = new TaskAdapters();
  assertEquals(taskAdapter(pool, 0), LIVE_ADAPTER);
  assertThrows(() => taskAdapter(pool, 1), Error, "task 2 has no adapter");
  const model = microModel(4);
  await beginTaskAdapter(pool, context(model, { taskIndex: 1 }), { adapterInit: "previous" });
  assertEquals(pool.count, 1);
  assertEquals(taskAdapter(pool, 0), "task0");
  assertEquals(taskAdapter(pool, 1), LIVE_ADAPTER);
  assertThrows(() => taskAdapter(pool, -1), Error, "has no adapter");
  pool.dispose();
  model.dispose();
});

Deno.test("beginTaskAdapter: freezes the previous adapter; fresh redraws A and zeroes B; order is checked", async () => {
  await initBackend("cpu");
  for (const adapterInit of ["previous", "fresh"] as const) {
    const model = microModel(4);
    const sites = model.loraSites();
    // Give B non-zero values, so that "fresh" visibly resets it.
    for (const s of sites) s.b.assign(tf.onesLike(s.b));
    const before = sites.map((s) => [s.a.dataSync().slice(), s.b.dataSync().slice()]);
    const pool = new TaskAdapters();
    await beginTaskAdapter(pool, context(model, { taskIndex: 0 }), { adapterInit });
    assertEquals(pool.count, 0);
    await beginTaskAdapter(pool, context(model, { taskIndex: 1 }), { adapterInit });
    assertEquals(pool.count, 1);
    sites.forEach((s, i) => {
      const frozen = s.pool!.find((p) => p.name === "task0")!;
      assertEquals(frozen.a.dataSync(), before[i][0]);
      assertEquals(frozen.b.dataSync(), before[i][1]);
      const a = s.a.dataSync();
      const b = s.b.dataSync();
      if (adapterInit === "previous") {
        assertEquals(a, before[i][0]);
        assertEquals(b, before[i][1]);
      } else {
        assert(a.some((v, j) => v !== before[i][0][j]), "A redrawn");
        assert(b.every((v) => v === 0), "B zeroed");
      }
    });
    // Resumed inside task 2 (already begun): nothing changes.
    await beginTaskAdapter(pool, context(model, { taskIndex: 1 }), { adapterInit });
    assertEquals(pool.count, 1);
    await assertRejects(
      () => beginTaskAdapter(pool, context(model, { taskIndex: 3 }), { adapterInit }),
      Error,
      "tasks must be trained in order",
    );
    pool.dispose();
    model.dispose();
  }
});

Deno.test("featuresWith: the features of one adapter alone; byGroup: outputs back in row order", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const x = images(3, 1);
  const f = featuresWith(model, x, { adapter: null });
  const g = withActiveAdapter(model.loraSites(), () => model.features!(x, { training: false }), {
    adapter: null,
  });
  assertEquals(f.dataSync(), g.dataSync());
  const calls: number[][] = [];
  const out = byGroup(x, {
    groups: Int32Array.from([2, 0, 2]),
    run: (group, xs) => {
      calls.push([group, xs.shape[0]]);
      return tf.fill([xs.shape[0], 2], group) as tf.Tensor2D;
    },
  });
  assertEquals(calls, [[0, 1], [2, 2]]);
  assertEquals(await out.array(), [[2, 2], [0, 0], [2, 2]]);
  // One group: `run` gets `x` itself.
  const seen: tf.Tensor4D[] = [];
  const same = byGroup(x, {
    groups: new Int32Array(3),
    run: (_group, xs) => {
      seen.push(xs);
      return f;
    },
  });
  assert(seen.length === 1 && seen[0] === x && same === f);
  tf.dispose([x, f, g, out]);
  model.dispose();
});
