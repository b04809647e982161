import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { createSeqLora } from "../../lib/methods/seq_lora.ts";
import { createTreeLora } from "../../lib/methods/treelora/treelora.ts";
import { VIT_PRESETS } from "../../lib/models/vit.ts";
import { createVitClassifier } from "../../lib/models/vit_classifier.ts";
import { Rng } from "../../lib/random.ts";
import {
  type LossRecord,
  type RunRecorder,
  trainClassIncremental,
} from "../../lib/train/class_incremental.ts";
import { initBackend } from "../../lib/run/backend.ts";
import { callOrderRecorder, countingTensors } from "../helpers.ts";
import { CONFIG, stream } from "../methods/helpers.ts";

const recorder = (rows: number[][], losses: LossRecord[]): RunRecorder => ({
  taskDone: (_t, r) => {
    rows.push(r.row.cil);
    return Promise.resolve();
  },
  losses: (l) => {
    losses.push(...l);
    return Promise.resolve();
  },
});

const METHODS: [string, () => ContinualMethod][] = [
  ["seqlora", () => createSeqLora()],
  ["treelora (code mode)", () => createTreeLora({}, { track: "vit" })],
  ["treelora (paper mode)", () => createTreeLora({ mode: "paper" }, { track: "vit" })],
  [
    "treelora (paper mode, gradient signatures)",
    () => createTreeLora({ mode: "paper", signatureSource: "lora_a_grads" }, { track: "vit" }),
  ],
];

for (const [name, make] of METHODS) {
  Deno.test(`${name}: no tensor leaks across steps and tasks; frozen weights stay bit-identical`, async () => {
    await initBackend("wasm");
    const s = stream();
    const model = createVitClassifier({
      ...VIT_PRESETS.micro,
      lora: { rank: 2, alpha: 4, dropout: 0.1 },
    }, {
      numOutputs: s.classOrder.length,
      rng: new Rng(0),
    });
    const base = await Promise.all([...model.vit.baseWeights().values()].map((v) => v.data()));
    const headBefore = await model.head.weight.data();
    const counts: number[] = [];
    const rows: number[][] = [];
    const losses: LossRecord[] = [];
    const before = tf.memory().numTensors;
    await trainClassIncremental(s, {
      model,
      method: countingTensors(make(), counts),
      config: CONFIG,
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: recorder(rows, losses),
    });
    // Steps 2.. of a task hold the same number of tensors as step 1 (Adam slots exist from step 1).
    assertEquals(counts.slice(0, 3).every((c) => c === counts[0]), true, `counts ${counts}`);
    assertEquals(counts.slice(3).every((c) => c === counts[3]), true, `counts ${counts}`);
    assertEquals(tf.memory().numTensors, before, "the trainer leaves no tensors behind");
    assertEquals(rows.length, 2);
    assertEquals(rows[1].length, 2);
    const after = await Promise.all([...model.vit.baseWeights().values()].map((v) => v.data()));
    after.forEach((a, i) => assertEquals(a, base[i]));
    const headAfter = await model.head.weight.data();
    assert(headAfter.some((v, i) => v !== headBefore[i]));
    assert(losses.every((l) => Number.isFinite(l.value)));
    if (name.startsWith("treelora")) {
      assert(
        losses.some((l) => l.task === 1 && l.term === "regularizer"),
        "regularizer active in task 2",
      );
    }
    model.dispose();
  });
}

Deno.test("training task 1 leaves the head outputs of other tasks bit-identical", async () => {
  await initBackend("wasm");
  const s = stream();
  const first = { ...s, tasks: s.tasks.slice(0, 1) };
  const model = createVitClassifier(VIT_PRESETS.micro, {
    numOutputs: s.classOrder.length,
    rng: new Rng(0),
  });
  const w0 = await model.head.weight.data();
  const b0 = await model.head.bias.data();
  await trainClassIncremental(first, {
    model,
    method: createSeqLora(),
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: recorder([], []),
  });
  const w1 = await model.head.weight.data();
  const b1 = await model.head.bias.data();
  const k = s.tasks[0].classes.length;
  const n = s.classOrder.length;
  for (let o = 0; o < n; o++) {
    const moved = b1[o] !== b0[o];
    assertEquals(moved, o < k, `bias of output ${o}`);
    for (let d = 0; d < model.head.dim; d++) {
      if (o >= k) assertEquals(w1[d * n + o], w0[d * n + o]);
    }
  }
  model.dispose();
});

Deno.test("a task's checkpoint is written before the rows and status that count the task", async () => {
  await initBackend("wasm");
  const s = stream();
  const model = createVitClassifier({
    ...VIT_PRESETS.micro,
    lora: { rank: 2, alpha: 4, dropout: 0 },
  }, {
    numOutputs: s.classOrder.length,
    rng: new Rng(0),
  });
  const calls: string[] = [];
  await trainClassIncremental(s, {
    model,
    method: createSeqLora(),
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: callOrderRecorder(calls),
  });
  assertEquals(calls, ["checkpoint 0", "taskDone 0", "checkpoint 1", "taskDone 1"]);
  model.dispose();
});
