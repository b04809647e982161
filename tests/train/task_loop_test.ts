import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertNotStrictEquals, assertRejects } from "@std/assert";
import type { ContinualMethod, MethodContext } from "../../lib/methods/method.ts";
import type { AdaptedModel } from "../../lib/models/backbone.ts";
import { Rng } from "../../lib/random.ts";
import {
  type LossRecord,
  stepsPerEpochFor,
  type TaskLoopConfig,
  type TaskTrack,
  trainTask,
} from "../../lib/train/task_loop.ts";
import { Timer } from "../../lib/methods/timer.ts";

const CONFIG: TaskLoopConfig = {
  batchSize: 2,
  lr: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  clipNorm: 1,
  resetOptimizerPerTask: false,
  maxStepsPerEpoch: null,
  logEvery: 2,
};

/** A method that logs its hook calls (with epoch/step and whether `ctx.batch` is set). */
function fakeMethod(
  events: string[],
  w: tf.Variable | null,
): ContinualMethod {
  const at = (ctx: MethodContext) => `${ctx.epoch}.${ctx.step}${ctx.batch ? "+b" : ""}`;
  return {
    name: "fake",
    options: () => ({}),
    beginTask: (ctx) => void events.push(`beginTask ${at(ctx)}`),
    beginEpoch: (ctx) => void events.push(`beginEpoch ${at(ctx)}`),
    trainableVariables: () => (w ? [w] : []),
    beforeStep: (ctx) => void events.push(`beforeStep ${at(ctx)}`),
    loss: (ctx, taskLoss) => {
      events.push(`loss ${at(ctx)}`);
      return { total: tf.mul(taskLoss, 2) as tf.Scalar, terms: { extra: taskLoss } };
    },
    afterStep: (ctx, info) => void events.push(`afterStep ${at(ctx)} ${info.gradients?.length}`),
    endTask: (ctx) => void events.push(`endTask ${at(ctx)}`),
    state: () => ({ json: {}, arrays: {} }),
    restore: () => {},
    dispose: () => {},
  };
}

function context(taskIndex: number, stepsPerEpoch: number): MethodContext {
  return {
    model: {} as AdaptedModel,
    taskIndex,
    numTasks: 3,
    epoch: 0,
    epochs: 2,
    step: 0,
    stepsPerEpoch,
    rng: new Rng(1),
    timer: new Timer(),
  };
}

/** A track whose batch is its index list and whose task loss is w·mean(idx). */
function fakeTrack(
  events: string[],
  w: tf.Variable,
  seeds: number[],
  options: { nan?: boolean; taskName?: string } = {},
): TaskTrack<Int32Array> {
  return {
    taskName: options.taskName,
    batch: (idx) => {
      events.push(`batch ${idx.length}`);
      return idx;
    },
    view: (batch) => ({ size: batch.length, logits: () => tf.zeros([batch.length, 2]) }),
    taskLoss: (batch, seed) => {
      seeds.push(seed);
      const mean = batch.reduce((a, b) => a + b, 0) / batch.length;
      const value = options.nan ? NaN : mean;
      const taskLoss = tf.sum(tf.mul(w, value)) as tf.Scalar;
      return { taskLoss, logits: tf.zeros([batch.length, 2]) };
    },
    counted: (batch) => void events.push(`counted ${batch.length}`),
  };
}

Deno.test("trainTask: hook order and counts, loss window, run counters", async () => {
  await tf.setBackend("cpu");
  const events: string[] = [];
  const w = tf.variable(tf.tensor1d([1]));
  const seeds: number[] = [];
  const method = fakeMethod(events, w);
  const losses: LossRecord[][] = [];
  const run = { start: performance.now(), done: 4, total: 20 };
  const ctx = context(1, stepsPerEpochFor(5, CONFIG));
  assertEquals(ctx.stepsPerEpoch, 3);
  const r = await trainTask(ctx, {
    method,
    config: CONFIG,
    optimizer: null,
    indices: Int32Array.from([0, 1, 2, 3, 4]),
    rngs: { data: new Rng(7), dropout: new Rng(9) },
    recorder: { losses: (records) => Promise.resolve(void losses.push(records)) },
    label: "fake",
    track: fakeTrack(events, w, seeds),
    run,
  });
  const step = (e: number, s: number, n: number) => [
    `batch ${n}`,
    `beforeStep ${e}.${s}+b`,
    `loss ${e}.${s}+b`,
    `afterStep ${e}.${s}+b 0`,
    `counted ${n}`,
  ];
  // Batch sizes follow the shuffle: two full batches and one of 1, in some order.
  const sizes = events.filter((e) => e.startsWith("batch")).map((e) => Number(e.split(" ")[1]));
  assertEquals(sizes.length, 6);
  let k = 0;
  const expected = ["beginTask 0.0"];
  for (let e = 0; e < 2; e++) {
    expected.push(`beginEpoch ${e}.0`);
    for (let s = 0; s < 3; s++) expected.push(...step(e, s, sizes[k++]));
  }
  expected.push("endTask 1.2");
  assertEquals(events, expected);
  assertEquals(sizes.slice(0, 3).sort(), [1, 2, 2]);
  assertEquals(ctx.batch, undefined);
  assertEquals(r.trainItems, 10);
  assertEquals(run.done, 14);
  assert(r.trainSeconds >= 0);
  // One dropout seed per step, drawn in order from the dropout stream.
  const dropout = new Rng(9);
  assertEquals(seeds, Array.from({ length: 6 }, () => dropout.seed()));
  // One window per epoch; steps 0 and 2 (logEvery 2, last step) with total, task, extra.
  assertEquals(losses.length, 2);
  assertEquals(losses[0].map((l) => `${l.task}.${l.epoch}.${l.step}.${l.term}`), [
    "1.0.0.total",
    "1.0.0.task",
    "1.0.0.extra",
    "1.0.2.total",
    "1.0.2.task",
    "1.0.2.extra",
  ]);
  for (const l of losses[1]) {
    if (l.term === "total") {
      const task = losses[1].find((m) => m.step === l.step && m.term === "task")!;
      assertEquals(l.value, 2 * task.value);
    }
  }
  // The optimiser carries over unless reset per task.
  const kept = await trainTask(context(2, 3), {
    method,
    config: CONFIG,
    optimizer: r.optimizer,
    indices: Int32Array.from([0, 1]),
    rngs: { data: new Rng(7), dropout: new Rng(9) },
    recorder: { losses: () => Promise.resolve() },
    label: "fake",
    track: fakeTrack([], w, []),
    run,
  });
  assertEquals(kept.optimizer, r.optimizer);
  const fresh = await trainTask(context(2, 3), {
    method,
    config: { ...CONFIG, resetOptimizerPerTask: true },
    optimizer: kept.optimizer,
    indices: Int32Array.from([0, 1]),
    rngs: { data: new Rng(7), dropout: new Rng(9) },
    recorder: { losses: () => Promise.resolve() },
    label: "fake",
    track: fakeTrack([], w, []),
    run,
  });
  assertNotStrictEquals(fresh.optimizer, kept.optimizer);
  fresh.optimizer.dispose();
  w.dispose();
});

Deno.test("trainTask: maxStepsPerEpoch caps the steps; no variables means no steps", async () => {
  await tf.setBackend("cpu");
  const w = tf.variable(tf.tensor1d([1]));
  const config = { ...CONFIG, maxStepsPerEpoch: 1 };
  assertEquals(stepsPerEpochFor(5, config), 1);
  const events: string[] = [];
  const r = await trainTask(context(0, stepsPerEpochFor(5, config)), {
    method: fakeMethod(events, w),
    config,
    optimizer: null,
    indices: Int32Array.from([0, 1, 2, 3, 4]),
    rngs: { data: new Rng(3), dropout: new Rng(4) },
    recorder: { losses: () => Promise.resolve() },
    label: "fake",
    track: fakeTrack(events, w, []),
    run: { start: performance.now(), done: 0, total: 10 },
  });
  assertEquals(events.filter((e) => e.startsWith("afterStep")).length, 2);
  assertEquals(r.trainItems, 4);
  r.optimizer.dispose();
  const none: string[] = [];
  const dropout = new Rng(4);
  const n = await trainTask(context(0, 3), {
    method: fakeMethod(none, null),
    config: CONFIG,
    optimizer: null,
    indices: Int32Array.from([0, 1, 2, 3, 4]),
    rngs: { data: new Rng(3), dropout },
    recorder: { losses: () => Promise.resolve() },
    label: "fake",
    track: fakeTrack(none, w, []),
    run: { start: performance.now(), done: 0, total: 10 },
  });
  assertEquals(none, ["beginTask 0.0", "endTask 0.0"]);
  assertEquals(n.trainItems, 0);
  // Nothing was drawn from the dropout stream.
  assertEquals(dropout.seed(), new Rng(4).seed());
  n.optimizer.dispose();
  w.dispose();
});

Deno.test("trainTask: a non-finite loss names the task, epoch, step and method", async () => {
  await tf.setBackend("cpu");
  const w = tf.variable(tf.tensor1d([1]));
  const events: string[] = [];
  const run = { start: performance.now(), done: 0, total: 10 };
  const options = {
    method: fakeMethod(events, w),
    config: CONFIG,
    optimizer: null,
    indices: Int32Array.from([0, 1, 2]),
    rngs: { data: new Rng(3), dropout: new Rng(4) },
    recorder: { losses: () => Promise.resolve() },
    label: "fake",
    run,
  };
  await assertRejects(
    () => trainTask(context(1, 2), { ...options, track: fakeTrack(events, w, [], { nan: true }) }),
    Error,
    "non-finite loss NaN at task 2, epoch 1, step 1 (method fake)",
  );
  // afterStep is not reached.
  assertEquals(events.filter((e) => e.startsWith("afterStep")).length, 0);
  await assertRejects(
    () =>
      trainTask(context(0, 2), {
        ...options,
        track: fakeTrack(events, w, [], { nan: true, taskName: "C-STANCE" }),
      }),
    Error,
    "at task 1 (C-STANCE), epoch 1, step 1",
  );
  w.dispose();
});
