import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createOgd } from "../../lib/methods/ogd.ts";
import { Rng } from "../../lib/random.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { CONFIG, context, microModel, silentRecorder, stream } from "./helpers.ts";

function randomArray(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1) / Math.sqrt(n));
}

Deno.test("ogd: projected gradients are orthogonal to every stored direction; the head is not projected", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const ogd = createOgd({});
  const rng = new Rng(3);
  const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
  const stored: Float32Array[] = [];
  for (let task = 0; task < 2; task++) {
    const ctx = context(model, { taskIndex: task, epochs: 2 });
    await ogd.beginTask(ctx);
    for (const epoch of [0, 1]) {
      for (let step = 0; step < 3; step++) {
        const gradients = lora.map((v) => randomArray(v.size, rng));
        await ogd.afterStep!({ ...ctx, epoch, step }, { taskLoss: 1, gradients });
        if (epoch === 1) {
          const flat = new Float32Array(gradients.reduce((n, g) => n + g.length, 0));
          let o = 0;
          for (const g of gradients) flat.set(g, (o += g.length) - g.length);
          stored.push(flat);
        }
      }
    }
    await ogd.endTask(ctx);
  }
  const { arrays } = ogd.state();
  assertEquals(arrays.basis.shape[0], 6, "3 last-epoch steps × 2 tasks");
  const vars = [...lora, ...model.headVariables()];
  const values = vars.map((v) => randomArray(v.size, rng));
  const out = tf.tidy(() => {
    const grads = Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(values[i], v.shape)]));
    const adjusted = ogd.adjustGradients!(context(model, { taskIndex: 2 }), grads);
    return vars.map((v) => tf.keep(adjusted[v.name]));
  });
  const got = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(out);
  const flat = new Float32Array(stored[0].length);
  let o = 0;
  got.slice(0, lora.length).forEach((g) => flat.set(g, (o += g.length) - g.length));
  for (const d of stored) {
    let ip = 0;
    for (let i = 0; i < d.length; i++) ip += d[i] * flat[i];
    assertAlmostEquals(ip, 0, 1e-5);
  }
  let moved = 0;
  for (let i = 0; i < flat.length; i++) moved += flat[i] ** 2;
  assert(moved > 1e-3, "the projection keeps the orthogonal part");
  got.slice(lora.length).forEach((g, i) => assertEquals(g, values[lora.length + i]));
  ogd.dispose();
  model.dispose();
});

Deno.test("ogd: the cap keeps the last N steps; state restores the basis", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const ogd = createOgd({ maxDirectionsPerTask: 2 });
  const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
  const rng = new Rng(4);
  const ctx = context(model);
  await ogd.beginTask(ctx);
  for (let step = 0; step < 5; step++) {
    const gradients = lora.map((v) => randomArray(v.size, rng));
    await ogd.afterStep!({ ...ctx, step }, { taskLoss: 1, gradients });
  }
  await ogd.endTask(ctx);
  const state = ogd.state();
  assertEquals(state.arrays.basis.shape[0], 2);
  const copy = createOgd({ maxDirectionsPerTask: 2 });
  copy.restore(state);
  assertEquals(copy.state().arrays.basis.data, state.arrays.basis.data);
  copy.dispose();
  ogd.dispose();
  model.dispose();
});

Deno.test("ogd: trains two tasks through the class-incremental trainer without leaks", async () => {
  await initBackend("wasm");
  const s = stream();
  const model = microModel(s.classOrder.length, 0.1);
  const method = createOgd({});
  const before = tf.memory().numTensors;
  const losses: { task: number; term: string; value: number }[] = [];
  await trainClassIncremental(s, {
    model,
    method,
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: silentRecorder(losses),
  });
  // 16 images per task in batches of 8: 2 steps per task, each a stored direction.
  assertEquals(method.taskSummary!().ogdDirections, 4);
  method.dispose();
  assertEquals(tf.memory().numTensors, before);
  assert(losses.every((l) => Number.isFinite(l.value)));
  model.dispose();
});
