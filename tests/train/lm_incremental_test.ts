import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { createSeqLora } from "../../lib/methods/seq_lora.ts";
import { createTreeLora } from "../../lib/methods/treelora/treelora.ts";
import {
  createDecoder,
  DECODER_PRESETS,
  type DecoderConfig,
  lmAdaptedModel,
} from "../../lib/models/decoder.ts";
import { Rng } from "../../lib/random.ts";
import { ByteTokenizer } from "../../lib/text/byte_tokenizer.ts";
import type { LossRecord } from "../../lib/train/class_incremental.ts";
import {
  type LmEvalRow,
  type LmPrediction,
  type LmRunRecorder,
  type LmScoreFn,
  type LmTask,
  type LmTaskTiming,
  type LmTrainConfig,
  trainLmIncremental,
} from "../../lib/train/lm_incremental.ts";
import { generateTokens } from "../../lib/train/generate.ts";
import { callOrderRecorder, countingTensors } from "../helpers.ts";

const MICRO: DecoderConfig = {
  ...DECODER_PRESETS["byte-micro"],
  lora: { rank: 2, alpha: 4, dropout: 0.1 },
};

const CONFIG: LmTrainConfig = {
  epochs: [1, 2],
  batchSize: 4,
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  clipNorm: 1,
  resetOptimizerPerTask: false,
  maxStepsPerEpoch: 2,
  logEvery: 1,
  maxLength: 32,
  maxPromptLength: 24,
  maxNewTokens: 4,
  evalBatchSize: 8,
  temperature: 0,
  maxTestExamples: null,
};

function tasks(): LmTask[] {
  const make = (name: string, f: (i: number) => [string, string], n: number) =>
    Array.from({ length: n }, (_, i) => {
      const [prompt, answer] = f(i);
      return { prompt: `${name}: ${prompt}\nAnswer:`, answer };
    });
  return [
    {
      name: "parity",
      train: make("parity", (i) => [`${i}`, i % 2 ? "odd" : "even"], 6),
      test: make("parity", (i) => [`${i + 10}`, i % 2 ? "odd" : "even"], 3),
      metric: "accuracy",
    },
    {
      name: "echo",
      train: make("echo", (i) => [`x${i}`, `x${i}`], 5),
      test: make("echo", (i) => [`y${i}`, `y${i}`], 2),
      metric: "exact",
    },
  ];
}

/** Prefix-match accuracy (spec §9.5 style), in %. */
const score: LmScoreFn = (_metric, predictions, references) =>
  (100 * predictions.filter((p, i) => p.trim().startsWith(references[i])).length) /
  predictions.length;

function recorder(store: {
  rows: LmEvalRow[];
  predictions: LmPrediction[][][];
  timings: LmTaskTiming[];
  summaries: (Record<string, unknown> | undefined)[];
  losses: LossRecord[];
}): LmRunRecorder {
  return {
    taskDone: (_t, r) => {
      store.rows.push(r.row);
      store.predictions.push(r.predictions);
      store.timings.push(r.timing);
      store.summaries.push(r.summary);
      return Promise.resolve();
    },
    losses: (l) => {
      store.losses.push(...l);
      return Promise.resolve();
    },
  };
}

const METHODS: [string, () => ContinualMethod][] = [
  ["seqlora", () => createSeqLora()],
  ["treelora", () => createTreeLora({}, { track: "lm" })],
];

for (const [name, make] of METHODS) {
  Deno.test(`LM trainer end to end with ${name}: matrix, predictions, no leaks, base frozen`, async () => {
    await initBackend("wasm");
    const model = createDecoder(MICRO, { rng: new Rng(0) });
    const base = await Promise.all([...model.baseWeights().values()].map((v) => v.data()));
    const store = { rows: [], predictions: [], timings: [], summaries: [], losses: [] } as {
      rows: LmEvalRow[];
      predictions: LmPrediction[][][];
      timings: LmTaskTiming[];
      summaries: (Record<string, unknown> | undefined)[];
      losses: LossRecord[];
    };
    const counts: number[] = [];
    const before = tf.memory().numTensors;
    const method = make();
    await trainLmIncremental(tasks(), {
      model,
      method: countingTensors(method, counts),
      tokenizer: new ByteTokenizer(),
      score,
      config: CONFIG,
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: recorder(store),
    });
    method.dispose();
    assertEquals(tf.memory().numTensors, before, "the trainer leaves no tensors behind");
    // Task 1: 2 steps; task 2: 2 epochs × 2 steps. Counts are flat from the second step on.
    assertEquals(counts.length, 6);
    assert(counts.slice(1).every((c) => c === counts[1]), `counts ${counts}`);
    // The upper-triangular score matrix: row n scores tasks 0..n.
    assertEquals(store.rows.map((r) => r.scores.length), [1, 2]);
    assertEquals(store.rows[1].metrics, ["accuracy", "exact"]);
    assertEquals(store.rows[1].examples, [3, 2]);
    assert(store.rows.flatMap((r) => r.scores).every((s) => s >= 0 && s <= 100));
    assertEquals(store.predictions.map((p) => p.map((t) => t.length)), [[3], [3, 2]]);
    const p = store.predictions[1][1][0];
    assertEquals([p.prompt, p.reference], ["echo: y0\nAnswer:", "y0"]);
    assert(p.score === 0 || p.score === 100);
    assert(store.timings.every((t) => t.trainTokens > 0 && t.components.generate > 0));
    assertEquals(store.timings.map((t) => t.trainExamples), [6, 10]); // 4 + 2; 2 × (4 + 1)
    // Frozen base bit-identical; the adapter moved.
    const after = await Promise.all([...model.baseWeights().values()].map((v) => v.data()));
    after.forEach((a, i) => assertEquals(a, base[i]));
    assert((await model.loraSites()[0].b.data()).some((v) => v !== 0));
    assert(store.losses.every((l) => Number.isFinite(l.value)));
    if (name === "treelora") {
      assert(store.losses.some((l) => l.task === 1 && l.term === "regularizer"));
      assert(store.summaries[1]?.tree !== null, "a tree over the 2 tasks");
    }
    model.dispose();
  });
}

Deno.test("lmAdaptedModel exposes the decoder's sites and no head; sampling needs an rng", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(0) });
  const adapted = lmAdaptedModel(model);
  assertEquals(adapted.loraSites().map((s) => s.name), [
    "layers.0.attn.q",
    "layers.0.attn.v",
    "layers.1.attn.q",
    "layers.1.attn.v",
  ]);
  assertEquals(adapted.headVariables(), []);
  await assertRejects(
    () =>
      trainLmIncremental(tasks(), {
        model,
        method: createSeqLora(),
        tokenizer: new ByteTokenizer(),
        score,
        config: { ...CONFIG, temperature: 0.1 },
        rngs: { data: new Rng(1), method: new Rng(2) },
        recorder: recorder({ rows: [], predictions: [], timings: [], summaries: [], losses: [] }),
      }),
    Error,
    "rngs.generation",
  );
  model.dispose();
});

Deno.test("LM trainer: a task's checkpoint is written before the rows and status that count the task", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(0) });
  const calls: string[] = [];
  await trainLmIncremental(tasks(), {
    model,
    method: createSeqLora(),
    tokenizer: new ByteTokenizer(),
    score,
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: callOrderRecorder(calls),
  });
  assertEquals(calls, ["checkpoint 0", "taskDone 0", "checkpoint 1", "taskDone 1"]);
  model.dispose();
});

Deno.test("generation stops at the model's context length", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(0) });
  const tokenizer = new ByteTokenizer();
  const ctx = MICRO.contextLength;
  // BOS + prompt fills ctx − 4 positions (a multiple of the padding, 8): at most 5 new tokens.
  const prompt = "a".repeat(ctx - 4 - 1);
  for (const kvCache of [true, false]) {
    const [ids] = await generateTokens(model, [prompt], {
      tokenizer,
      maxNewTokens: 4096,
      maxPromptLength: ctx,
      kvCache,
      padMultiple: 4,
    });
    assert(ids.length <= 5, `${ids.length} tokens generated past the context (kvCache ${kvCache})`);
  }
  // A prompt that fills the context leaves no room: nothing is generated.
  const [none] = await generateTokens(model, ["b".repeat(ctx - 1)], {
    tokenizer,
    maxNewTokens: 4096,
    maxPromptLength: ctx,
    padMultiple: 1,
  });
  assert(none.length <= 1, "at most one token: the last position of the context");
  model.dispose();
});
