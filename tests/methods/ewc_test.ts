import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createEwc, ewcPenalty, ewcVariables } from "../../lib/methods/ewc.ts";
import { Rng } from "../../lib/random.ts";
import {
  loadCheckpoint,
  saveCheckpoint,
  type TrainerCheckpoint,
} from "../../lib/train/checkpoint.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { CONFIG, context, microModel, silentRecorder, stream } from "./helpers.ts";

Deno.test("ewc: the penalty is zero at the anchor and equals a hand computation off it", async () => {
  await initBackend("cpu");
  const w = tf.variable(tf.tensor2d([[1, -2], [0.5, 3]]));
  const anchor = [tf.tensor2d([[1, -2], [0.5, 3]])];
  const fisher = [tf.tensor2d([[0.1, 2], [0, 4]])];
  const at = ewcPenalty([w], { fisher, anchor, lambda: 50 });
  assertEquals(await at.data(), new Float32Array([0]));
  w.assign(tf.tensor2d([[2, -2], [10, 2.5]]));
  const off = ewcPenalty([w], { fisher, anchor, lambda: 50 });
  // (50/2)·(0.1·1² + 2·0 + 0·9.5² + 4·0.5²) = 25·1.1 = 27.5
  assertAlmostEquals((await off.data())[0], 27.5, 1e-4);
  tf.dispose([w, ...anchor, ...fisher, at, off]);
});

Deno.test("ewc: Fisher from squared gradients, anchor at the end of the task, penalty from task 2", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const ewc = createEwc({ lambda: 2 }, { track: "vit" });
  assertEquals(createEwc({}, { track: "lm" }).options(), {
    lambda: 400,
    params: "lora",
    fisherFrom: "task",
  });
  const vars = ewcVariables(model, "lora");
  const ctx = context(model, { epochs: 1, stepsPerEpoch: 2 });
  await ewc.beginTask(ctx);
  const g = vars.map((v) => new Float32Array(v.size).fill(2));
  // The total's gradient (9) differs from the task loss's (2): the Fisher squares the latter.
  const total = vars.map((v) => new Float32Array(v.size).fill(9));
  await ewc.afterStep!(ctx, { taskLoss: 1, gradients: total, taskGradients: g });
  await ewc.afterStep!(ctx, { taskLoss: 1, gradients: total, taskGradients: g });
  const none = tf.tidy(() => ewc.loss(ctx, tf.scalar(1)).terms);
  assertEquals(Object.keys(none), [], "no penalty before the first anchor");
  await ewc.endTask(ctx);
  const state = ewc.state();
  assertEquals(state.arrays["fisher.0"].data[0], 4, "(2² + 2²) / 2 steps");
  const ctx2 = context(model, { taskIndex: 1 });
  await ewc.beginTask(ctx2);
  const zero = tf.tidy(() => ewc.loss(ctx2, tf.scalar(1)).terms.ewc.dataSync()[0]);
  assertEquals(zero, 0);
  const head = model.headVariables()[1];
  head.assign(tf.add(head, 1));
  // Only the head bias moved by 1: (2/2)·Σ 4·1² over its entries.
  const moved = tf.tidy(() => ewc.loss(ctx2, tf.scalar(1)).terms.ewc.dataSync()[0]);
  assertAlmostEquals(moved, 4 * head.size, 1e-3);
  const copy = createEwc({ lambda: 2 }, { track: "vit" });
  copy.restore(state);
  const restored = tf.tidy(() => copy.loss(ctx2, tf.scalar(1)).terms.ewc.dataSync()[0]);
  assertAlmostEquals(restored, moved, 1e-3);
  ewc.dispose();
  copy.dispose();
  model.dispose();
});

for (const params of ["lora", "base"] as const) {
  Deno.test(`ewc (${params}): trains through 2 tasks without leaks; the penalty is logged in task 2`, async () => {
    await initBackend("wasm");
    const s = stream();
    const model = microModel(s.classOrder.length);
    const base = await model.baseVariables!()[3].data();
    const losses: { task: number; term: string; value: number }[] = [];
    const ewc = createEwc({ params }, { track: "vit" });
    const before = tf.memory().numTensors;
    await trainClassIncremental(s, {
      model,
      method: ewc,
      config: CONFIG,
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: silentRecorder(losses),
    });
    ewc.dispose();
    assertEquals(tf.memory().numTensors, before);
    assert(losses.some((l) => l.task === 1 && l.term === "ewc"));
    assert(losses.every((l) => Number.isFinite(l.value)));
    const after = await model.baseVariables!()[3].data();
    assertEquals(after.some((v, i) => v !== base[i]), params === "base");
    assert(model.baseVariables!().every((v) => !v.trainable), "base frozen again after the task");
    model.dispose();
  });
}

Deno.test("ewc (base): resuming after task 1 of 3 from the checkpoint gives the base weights and accuracies of an uninterrupted run", async () => {
  await initBackend("cpu");
  const s = stream(3);
  // Checkpoints go through the files, as in a run (EWC's state holds its live Fisher arrays).
  const dir = await Deno.makeTempDir();
  const run = async (resume?: TrainerCheckpoint) => {
    const model = microModel(s.classOrder.length);
    const initial = await Promise.all(model.baseVariables!().map((v) => v.data()));
    const ewc = createEwc({ params: "base" }, { track: "vit" });
    const rows: { task: number; cil: number[]; til: number[] }[] = [];
    const before = tf.memory().numTensors;
    await trainClassIncremental(s, {
      model,
      method: ewc,
      config: CONFIG,
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: {
        ...silentRecorder(),
        taskDone: (task, r) => {
          rows.push({ task, cil: r.row.cil, til: r.row.til });
          return Promise.resolve();
        },
        checkpoint: (c) => resume ? Promise.resolve() : saveCheckpoint(dir, c),
      },
      resume,
    });
    const state = ewc.state();
    ewc.dispose();
    const leaked = tf.memory().numTensors - before;
    const read = (vs: tf.Variable[]) =>
      Promise.all(vs.map((v) => v.data() as Promise<Float32Array>));
    const base = await read(model.baseVariables!());
    const trained = await read(ewcVariables(model, "all"));
    model.dispose();
    return { initial, rows, state, leaked, base, trained };
  };
  try {
    const full = await run();
    assertEquals(full.leaked, 0);
    assertEquals(full.rows.map((r) => r.task), [0, 1, 2]);
    // The checkpoint after task 1 holds the base weights, fine-tuned in task 1.
    const ckpt = (await loadCheckpoint(dir, 0))!;
    assertEquals(ckpt.extra!.length, full.base.length);
    assert(ckpt.extra!.some((e, i) => e.data.some((x, k) => x !== full.initial[i][k])));
    const resumed = await run(ckpt);
    assertEquals(resumed.leaked, 0);
    assertEquals(resumed.base, full.base);
    assertEquals(resumed.trained, full.trained);
    assertEquals(resumed.rows, full.rows.slice(1));
    assertEquals(resumed.state, full.state);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ewc: in task 2 the Fisher grows by the squared task-loss gradient (total minus λF(θ − θ*); λ 1000), not the total's", async () => {
  await initBackend("cpu");
  for (const fisherFrom of ["task", "total"] as const) {
    const s = stream();
    const model = microModel(s.classOrder.length);
    const inner = createEwc({ lambda: 1000, fisherFrom }, { track: "vit" });
    const vars = ewcVariables(model, "lora");
    let theta: Float32Array[] = [];
    let checked = 0;
    const method = {
      ...inner,
      beforeStep: (ctx: Parameters<NonNullable<typeof inner.beforeStep>>[0]) => {
        if (ctx.taskIndex === 1) theta = vars.map((v) => v.dataSync() as Float32Array);
      },
      afterStep: async (
        ctx: Parameters<NonNullable<typeof inner.afterStep>>[0],
        info: Parameters<NonNullable<typeof inner.afterStep>>[1],
      ) => {
        if (ctx.taskIndex === 1) {
          const st = inner.state();
          const before = vars.map((_, i) => st.arrays[`fisher.${i}`].data.slice());
          // The penalty uses the Fisher frozen at the end of task 1 (frozenAt1) and the anchor.
          const anchor = vars.map((_, i) => st.arrays[`anchor.${i}`].data);
          await inner.afterStep!(ctx, info);
          const after = inner.state().arrays;
          const scale = 1 / (ctx.epochs * ctx.stepsPerEpoch);
          for (let i = 0; i < vars.length; i++) {
            for (let k = 0; k < vars[i].size; k += 37) {
              const penaltyGrad = 1000 * frozenAt1[i][k] * (theta[i][k] - anchor[i][k]);
              const task = info.gradients![i][k] - penaltyGrad;
              assertAlmostEquals(info.taskGradients![i][k], task, 1e-5);
              const g = fisherFrom === "task" ? task : info.gradients![i][k];
              assertAlmostEquals(after[`fisher.${i}`].data[k] - before[i][k], g * g * scale, 1e-6);
              if (Math.abs(penaltyGrad) > 1e-3) checked++;
            }
          }
          return;
        }
        await inner.afterStep!(ctx, info);
      },
      endTask: async (ctx: Parameters<typeof inner.endTask>[0]) => {
        await inner.endTask(ctx);
        if (ctx.taskIndex === 0) {
          frozenAt1 = vars.map((_, i) => inner.state().arrays[`fisher.${i}`].data.slice());
        }
      },
    };
    let frozenAt1: Float32Array[] = [];
    await trainClassIncremental(s, {
      model,
      method,
      config: { ...CONFIG, epochs: 2 },
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: silentRecorder(),
    });
    assert(checked > 0, "the penalty gradient was never away from zero");
    inner.dispose();
    model.dispose();
  }
});
