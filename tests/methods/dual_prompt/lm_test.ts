import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import {
  createDualPromptLm,
  DUAL_PROMPT_LM_DEFAULTS,
  randomTokenEmbeddings,
} from "../../../lib/methods/dual_prompt/lm.ts";
import type { ContinualMethod, LmPrefixAt, MethodState } from "../../../lib/methods/method.ts";
import {
  createDecoder,
  type Decoder,
  DECODER_PRESETS,
  lmAdaptedModel,
} from "../../../lib/models/decoder.ts";
import { Rng } from "../../../lib/random.ts";
import { ByteTokenizer } from "../../../lib/text/byte_tokenizer.ts";
import type { LossRecord } from "../../../lib/train/class_incremental.ts";
import { lmExamples } from "../../../lib/train/example_access.ts";
import { generateTokens } from "../../../lib/train/generate.ts";
import { trainingBatch } from "../../../lib/train/lm_batches.ts";
import {
  type LmPrediction,
  type LmRunRecorder,
  type LmTask,
  type LmTrainConfig,
  trainLmIncremental,
} from "../../../lib/train/lm_incremental.ts";
import { lmLoss } from "../../../lib/train/lm_loss.ts";
import { lmContext as context } from "../helpers.ts";
import type { TrainerCheckpoint } from "../../../lib/train/checkpoint.ts";

const tokenizer = new ByteTokenizer();

function tasks(): LmTask[] {
  const make = (name: string, split: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ prompt: `${name} ${split}${i}:`, answer: `${i % 3}` }));
  return [
    { name: "alpha", train: make("alpha", "tr", 6), test: make("alpha", "te", 3), metric: "x" },
    { name: "beta", train: make("beta", "tr", 5), test: make("beta", "te", 2), metric: "x" },
  ];
}

const CONFIG: LmTrainConfig = {
  epochs: 2,
  batchSize: 4,
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  clipNorm: 1,
  resetOptimizerPerTask: true,
  maxStepsPerEpoch: null,
  logEvery: 1,
  maxLength: 32,
  maxPromptLength: 32,
  maxNewTokens: 3,
  evalBatchSize: 8,
  temperature: 0,
  maxTestExamples: null,
};

function microModel(): Decoder {
  return createDecoder({
    ...DECODER_PRESETS["byte-micro"],
    lora: { rank: 2, alpha: 4, dropout: 0.1 },
  }, { rng: new Rng(0) });
}

/** Every base weight and LoRA A/B, read back. */
async function backbone(model: Decoder): Promise<Float32Array[]> {
  const vars = [
    ...model.baseWeights().values(),
    ...model.loraSites().flatMap((s) => [s.a, s.b]),
  ];
  return await Promise.all(vars.map(async (v) => (await v.data()) as Float32Array));
}

/** Train on the two tasks; record the method state after each task, predictions, losses. */
async function run(model: Decoder, method: ContinualMethod) {
  const states: MethodState[] = [];
  const predictions: LmPrediction[][][] = [];
  const losses: LossRecord[] = [];
  const summaries: Record<string, unknown>[] = [];
  const recorder: LmRunRecorder = {
    taskDone: (_t, r) => {
      predictions.push(r.predictions);
      summaries.push(r.summary ?? {});
      return Promise.resolve();
    },
    losses: (l) => {
      losses.push(...l);
      return Promise.resolve();
    },
    checkpoint: (c) => {
      states.push(c.method);
      return Promise.resolve();
    },
  };
  await trainLmIncremental(tasks(), {
    model,
    method,
    tokenizer,
    score: () => 0,
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder,
  });
  return { states, predictions, losses, summaries };
}

const rowsOf = (state: MethodState, name: string) => Array.from(state.arrays[name].data);

/** The method's prefix for task `taskIndex` (DualPrompt ignores the rows), read back. */
function prefixOf(method: ContinualMethod, model: Decoder, taskIndex: number) {
  return tf.tidy(() => {
    const p = method.inputPrefix!({ taskIndex, training: false }, {
      model,
      ids: tf.zeros([1, 1], "int32"),
      attentionMask: tf.ones([1, 1]),
      promptMask: tf.ones([1, 1]),
    })!;
    return { shape: p.shape, data: Array.from(p.dataSync()) };
  });
}

Deno.test("dualprompt-lm: backbone bit-identical; G and the trained task's E move; task prompt at evaluation", async () => {
  await initBackend("cpu");
  const model = microModel();
  const start = await backbone(model);
  const calls: (LmPrefixAt & { rows: number })[] = [];
  const inner = createDualPromptLm({});
  const method: ContinualMethod = {
    ...inner,
    inputPrefix: (at, rows) => {
      calls.push({ ...at, rows: rows.ids.shape[0] });
      return inner.inputPrefix!(at, rows);
    },
  };
  const before = tf.memory().numTensors;
  const { states, predictions, summaries } = await run(model, method);

  // Initial prompts: rows of the token embedding drawn with the method stream (after the
  // trainer splits off its dropout stream), G first, then E_0, E_1.
  const rng = new Rng(2);
  rng.seed();
  const init = randomTokenEmbeddings(lmAdaptedModel(model), { rows: 2 + 2 * 3, rng });
  const d = 32;
  const initial = {
    general: Array.from(init.data.subarray(0, 2 * d)),
    "task.0": Array.from(init.data.subarray(2 * d, 5 * d)),
    "task.1": Array.from(init.data.subarray(5 * d, 8 * d)),
  };
  assertEquals(states[0].arrays.general.shape, [2, d]);
  assertEquals(states[0].arrays["task.1"].shape, [3, d]);
  // After task 1: G and E_0 trained, E_1 untouched.
  assertNotEquals(rowsOf(states[0], "general"), initial.general);
  assertNotEquals(rowsOf(states[0], "task.0"), initial["task.0"]);
  assertEquals(rowsOf(states[0], "task.1"), initial["task.1"]);
  // After task 2: G and E_1 trained, E_0 as it was after task 1.
  assertNotEquals(rowsOf(states[1], "general"), rowsOf(states[0], "general"));
  assertNotEquals(rowsOf(states[1], "task.1"), initial["task.1"]);
  assertEquals(rowsOf(states[1], "task.0"), rowsOf(states[0], "task.0"));
  // The backbone (base and LoRA) did not move by a single bit.
  assertEquals(await backbone(model), start);
  assertEquals(summaries[0], { promptTokens: 5 });

  // Training calls use the trained task; generation the evaluated task (identity at test).
  const training = calls.filter((c) => c.training);
  assertEquals(training.length, 2 * 2 + 2 * 2, "2 epochs × 2 batches per task");
  assert(training.slice(0, 4).every((c) => c.taskIndex === 0));
  assert(training.slice(4).every((c) => c.taskIndex === 1));
  const evaluation = calls.filter((c) => !c.training);
  assertEquals(evaluation.map((c) => [c.taskIndex, c.rows]), [[0, 3], [0, 3], [1, 2]]);

  // The final predictions of task 1 are exactly the generations with [E_0 ; G] in front.
  const final = states[1];
  const e0g = tf.tensor2d([...rowsOf(final, "task.0"), ...rowsOf(final, "general")], [5, d]);
  const expected = await generateTokens(model, tasks()[0].test.map((e) => e.prompt), {
    tokenizer,
    maxNewTokens: CONFIG.maxNewTokens,
    maxPromptLength: CONFIG.maxPromptLength,
    batchSize: CONFIG.evalBatchSize,
    inputPrefix: () => e0g,
  });
  assertEquals(
    predictions[1][0].map((p) => p.prediction),
    expected.map((r) => tokenizer.decode(r)),
  );
  // The hook's prefix for task 2 is [E_1 ; G].
  assertEquals(prefixOf(inner, model, 1), {
    shape: [5, d],
    data: [...rowsOf(final, "task.1"), ...rowsOf(final, "general")],
  });
  e0g.dispose();
  inner.dispose();
  assertEquals(tf.memory().numTensors, before, "no tensor leaks");
  model.dispose();
});

Deno.test("dualprompt-lm: ctx.examples.loss uses the set's task prompt", async () => {
  await initBackend("cpu");
  const model = microModel();
  const method = createDualPromptLm({});
  await method.beginTask(context(model));
  const data = tasks();
  const ex = lmExamples(data, {
    currentTask: 1,
    model,
    tokenizer,
    maxLength: 32,
    inputPrefix: (at, rows) => method.inputPrefix!(at, rows),
  });
  const plain = lmExamples(data, { currentTask: 1, model, tokenizer, maxLength: 32 });
  const set = ex.select(0, [0, 2]);
  const batch = trainingBatch([data[0].train[0], data[0].train[2]], { tokenizer, maxLength: 32 });
  const e0g = prefixOf(method, model, 0);
  const manual = tf.tidy(() => {
    const prefix = tf.tensor(e0g.data, e0g.shape);
    return lmLoss(
      model.logits(tf.tensor2d(batch.ids, batch.shape, "int32"), {
        training: false,
        attentionMask: tf.tensor2d(batch.mask, batch.shape, "int32"),
        prefix,
      }),
      batch.labels,
    ).dataSync()[0];
  });
  const withPrefix = tf.tidy(() => ex.loss(set).dataSync()[0]);
  const without = tf.tidy(() => plain.loss(set).dataSync()[0]);
  assertEquals(withPrefix, manual);
  assertNotEquals(withPrefix, without);
  method.dispose();
  model.dispose();
});

Deno.test("dualprompt-lm: state/restore round trip, options, misuse", async () => {
  await initBackend("cpu");
  const model = microModel();
  const before = tf.memory().numTensors;
  const a = createDualPromptLm({ generalLength: 1, taskLength: 2 });
  assertEquals(a.options(), { generalLength: 1, taskLength: 2 });
  assertEquals(createDualPromptLm().options(), { ...DUAL_PROMPT_LM_DEFAULTS });
  assertThrows(() => a.trainableVariables(context(model)), Error, "beginTask first");
  await a.beginTask(context(model, { numTasks: 3 }));
  const state = a.state();
  assertEquals(Object.keys(state.arrays), ["general", "task.0", "task.1", "task.2"]);
  const b = createDualPromptLm({ generalLength: 1, taskLength: 2 });
  b.restore(state);
  assertEquals(b.state(), state);
  // beginTask after restore keeps the restored prompts (resume).
  await b.beginTask(context(model, { taskIndex: 2, numTasks: 3, rng: new Rng(99) }));
  assertEquals(b.state(), state);
  assertEquals(b.trainableVariables(context(model, { taskIndex: 2 })).map((v) => v.shape), [
    [1, 32],
    [2, 32],
  ]);
  assertEquals(prefixOf(b, model, 2).shape, [3, 32]);
  assertThrows(() => prefixOf(b, model, 3), Error, "no expert prompt for task 3");
  // An expert-only variant returns the expert prompt itself.
  const c = createDualPromptLm({ generalLength: 0 });
  await c.beginTask(context(model));
  assertEquals(c.trainableVariables(context(model)).length, 1);
  assertEquals(prefixOf(c, model, 0).shape, [3, 32]);
  for (const m of [a, b, c]) m.dispose();
  assertEquals(tf.memory().numTensors, before, "no tensor leaks");
  assertThrows(() => createDualPromptLm({ taskLength: 1.5 }), Error, "integer");
  assertThrows(() => createDualPromptLm({ generalLength: 0, taskLength: 0 }), Error, ">= 1");
  assertThrows(() => createDualPromptLm({ keys: true }), Error, "unknown dualprompt option");
  model.dispose();
});

Deno.test("dualprompt-lm: a run resumed from its task-1 checkpoint ends with the same prompts", async () => {
  await initBackend("cpu");
  const run2 = async (resume?: TrainerCheckpoint) => {
    const model = microModel();
    const method = createDualPromptLm({});
    const checkpoints: TrainerCheckpoint[] = [];
    await trainLmIncremental(tasks(), {
      model,
      method,
      tokenizer,
      score: () => 0,
      config: CONFIG,
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: {
        taskDone: () => Promise.resolve(),
        losses: () => Promise.resolve(),
        checkpoint: (c) => {
          checkpoints.push(c);
          return Promise.resolve();
        },
      },
      resume,
    });
    const final = method.state();
    method.dispose();
    model.dispose();
    return { checkpoints, final };
  };
  const full = await run2();
  const resumed = await run2(full.checkpoints[0]);
  assertEquals(resumed.checkpoints.length, 1);
  assertEquals(resumed.final, full.final);
});
