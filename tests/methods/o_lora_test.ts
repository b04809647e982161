import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { createOLora, orthogonalityPenalty } from "../../lib/methods/o_lora.ts";
import { Rng } from "../../lib/random.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { CONFIG, context, microModel, silentRecorder, stream } from "./helpers.ts";

Deno.test("o-lora penalty: zero for orthogonal A's, Σ|A_old·A_newᵀ| otherwise", async () => {
  await initBackend("cpu");
  const zero = orthogonalityPenalty(tf.tensor2d([[1, 0, 0], [0, 1, 0]]), tf.tensor2d([[0, 0, 2]]));
  assertEquals(await zero.data(), new Float32Array([0]));
  // old·newᵀ = [[1, 0], [-1, -1]] → 3.
  const p = orthogonalityPenalty(
    tf.tensor2d([[1, 2, 0], [0, 1, -1]]),
    tf.tensor2d([[1, 0, 1], [2, -1, 0]]),
  );
  assertAlmostEquals((await p.data())[0], 3, 1e-6);
  tf.dispose([zero, p]);
});

Deno.test("o-lora: old adapters stay bit-identical across later tasks; penalty logged; no leaks", async () => {
  await initBackend("wasm");
  const s = stream(3);
  const model = microModel(s.classOrder.length, 0.1);
  const inner = createOLora({});
  const finals: Float32Array[][] = [];
  const method: ContinualMethod = {
    ...inner,
    endTask: async (ctx) => {
      await inner.endTask(ctx);
      finals.push(
        await Promise.all(
          model.loraSites().flatMap((x) => [x.a.data(), x.b.data()]),
        ) as Float32Array[],
      );
    },
  };
  const losses: { task: number; term: string; value: number }[] = [];
  const before = tf.memory().numTensors;
  await trainClassIncremental(s, {
    model,
    method,
    config: { ...CONFIG, epochs: 2 },
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: silentRecorder(losses),
  });
  const sites = model.loraSites();
  assertEquals(sites.map((x) => x.pool?.map((p) => p.name)), sites.map(() => ["task0", "task1"]));
  for (const [t, name] of [[0, "task0"], [1, "task1"]] as const) {
    const got = await Promise.all(
      sites.flatMap((x) => {
        const p = x.pool!.find((q) => q.name === name)!;
        assert(!p.a.trainable && !p.b.trainable);
        return [p.a.data(), p.b.data()];
      }),
    );
    got.forEach((g, i) => assertEquals(g, finals[t][i], `${name} array ${i}`));
  }
  // The new adapter differs from the frozen ones, and the penalty is on from task 2.
  assert(finals[2][0].some((v, i) => v !== finals[1][0][i]));
  assert(losses.some((l) => l.task === 1 && l.term === "orthogonality" && l.value > 0));
  assert(!losses.some((l) => l.task === 0 && l.term === "orthogonality"));
  const state = inner.state();
  assertEquals(Object.keys(state.arrays).length, sites.length * 2 * 2);
  inner.dispose();
  assertEquals(sites.every((x) => x.pool?.length === 0), true);
  assertEquals(tf.memory().numTensors, before);
  // A restored method re-attaches the same adapters.
  const again = createOLora({});
  again.restore(state);
  await again.beginTask(context(model, { taskIndex: 2, numTasks: 3 }));
  assertEquals(await sites[0].pool![1].b.data(), finals[1][1]);
  again.dispose();
  model.dispose();
});
