import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createEwc } from "../../lib/methods/ewc.ts";
import { createFix, demonstrations, FIX_DEFAULTS } from "../../lib/methods/fix.ts";
import { createJoint } from "../../lib/methods/joint.ts";
import { createLwf } from "../../lib/methods/lwf.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { createDecoder, DECODER_PRESETS } from "../../lib/models/decoder.ts";
import { Rng } from "../../lib/random.ts";
import { ByteTokenizer } from "../../lib/text/byte_tokenizer.ts";
import type { LossRecord } from "../../lib/train/class_incremental.ts";
import {
  type LmRunRecorder,
  type LmTask,
  type LmTaskTiming,
  trainLmIncremental,
} from "../../lib/train/lm_incremental.ts";

function tasks(): LmTask[] {
  const make = (name: string, split: string, n: number) =>
    Array.from(
      { length: n },
      (_, i) => ({ prompt: `${name} ${split}${i}:`, answer: `${split}${i}` }),
    );
  return [
    { name: "alpha", train: make("alpha", "tr", 6), test: make("alpha", "te", 3), metric: "x" },
    { name: "MeetingBank", train: make("mb", "tr", 5), test: make("mb", "te", 2), metric: "x" },
  ];
}

async function run(method: ContinualMethod) {
  const model = createDecoder({
    ...DECODER_PRESETS["byte-micro"],
    lora: { rank: 2, alpha: 4, dropout: 0 },
  }, { rng: new Rng(0) });
  const lora = await model.loraSites()[0].b.data();
  const losses: LossRecord[] = [];
  const timings: LmTaskTiming[] = [];
  const prompts: string[] = [];
  const recorder: LmRunRecorder = {
    taskDone: (_t, r) => {
      timings.push(r.timing);
      prompts.push(...r.predictions.flat().map((p) => p.prompt));
      return Promise.resolve();
    },
    losses: (l) => {
      losses.push(...l);
      return Promise.resolve();
    },
  };
  const before = tf.memory().numTensors;
  await trainLmIncremental(tasks(), {
    model,
    method,
    tokenizer: new ByteTokenizer(),
    score: () => 0,
    config: {
      epochs: 1,
      batchSize: 4,
      lr: 1e-2,
      beta1: 0.9,
      beta2: 0.95,
      clipNorm: 1,
      resetOptimizerPerTask: false,
      maxStepsPerEpoch: null,
      logEvery: 1,
      maxLength: 32,
      maxPromptLength: 24, // below the micro model's context of 32: generation stops at the context
      maxNewTokens: 2,
      evalBatchSize: 8,
      temperature: 0,
      maxTestExamples: null,
    },
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder,
  });
  method.dispose();
  const leaked = tf.memory().numTensors - before;
  const moved = (await model.loraSites()[0].b.data()).some((v, i) => v !== lora[i]);
  model.dispose();
  return { losses, timings, prompts, leaked, moved };
}

Deno.test("fix: demonstrations come from the task's train split, never the evaluated one; none for MeetingBank", () => {
  const [alpha, mb] = tasks();
  const fix = createFix({});
  for (let i = 0; i < alpha.test.length; i++) {
    const at = { taskIndex: 0, taskName: alpha.name, exampleIndex: i, train: alpha.train };
    const demos = demonstrations(at, FIX_DEFAULTS);
    assertEquals(demos.length, 6);
    assertEquals(new Set(demos).size, 6, "distinct");
    assert(demos.every((d) => alpha.train.includes(d)));
    const prompt = fix.evalPrompt!(alpha.test[i].prompt, at);
    assert(prompt.endsWith(alpha.test[i].prompt));
    assert(!alpha.test.some((e) => prompt.includes(e.answer) && e !== alpha.test[i]));
    assertEquals(fix.evalPrompt!(alpha.test[i].prompt, at), prompt, "seeded");
  }
  const at = { taskIndex: 1, taskName: mb.name, exampleIndex: 0, train: mb.train };
  assertEquals(fix.evalPrompt!(mb.test[0].prompt, at), mb.test[0].prompt);
  const syn = { ...at, taskName: "syn-MeetingBank" };
  assertEquals(fix.evalPrompt!(mb.test[0].prompt, syn), mb.test[0].prompt);
});

Deno.test("fix: the LM trainer skips optimisation when there is nothing to train", async () => {
  await initBackend("wasm");
  const r = await run(createFix({}));
  assertEquals(r.leaked, 0);
  assertEquals(r.moved, false);
  assertEquals(r.losses, []);
  assertEquals(r.timings.map((t) => t.trainExamples), [0, 0]);
  assert(r.timings.every((t) => t.generatedTokens > 0));
  assert(r.prompts.every((p) => !p.includes("tr")), "predictions keep the original test prompt");
});

Deno.test("LM track: ewc, lwf and joint train through 2 tasks without leaks", async () => {
  await initBackend("wasm");
  const ewc = await run(createEwc({}, { track: "lm" }));
  assert(ewc.losses.some((l) => l.task === 1 && l.term === "ewc"));
  const lwf = await run(createLwf({}));
  const terms = lwf.losses.filter((l) => l.term === "lwf");
  assert(terms.length > 0 && terms.every((l) => l.task === 1 && Number.isFinite(l.value)));
  assert(Math.abs(terms[0].value) < 1e-4, "teacher = student at the first step");
  const joint = await run(createJoint());
  assertEquals(joint.timings.map((t) => t.trainExamples), [6, 11]);
  for (const r of [ewc, lwf, joint]) {
    assertEquals(r.leaked, 0);
    assert(r.moved);
  }
});
