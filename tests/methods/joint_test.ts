import { assert, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createJoint } from "../../lib/methods/joint.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { createSeqLora } from "../../lib/methods/seq_lora.ts";
import { Rng } from "../../lib/random.ts";
import {
  type RunRecorder,
  type TaskTiming,
  trainClassIncremental,
} from "../../lib/train/class_incremental.ts";
import type { EvalRow } from "../../lib/train/evaluate.ts";
import { CONFIG, microModel, stream } from "./helpers.ts";

async function run(method: ContinualMethod, numTasks: number, maxSteps: number | null) {
  const s = stream(numTasks);
  const model = microModel(s.classOrder.length, 0.1);
  const rows: EvalRow[] = [];
  const timings: TaskTiming[] = [];
  const recorder: RunRecorder = {
    taskDone: (_t, r) => {
      rows.push(r.row);
      timings.push(r.timing);
      return Promise.resolve();
    },
    losses: () => Promise.resolve(),
  };
  await trainClassIncremental(s, {
    model,
    method,
    config: { ...CONFIG, maxStepsPerEpoch: maxSteps },
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder,
  });
  const head = await model.head.weight.data();
  model.dispose();
  return { rows, timings, head, stream: s };
}

Deno.test("joint: with one task it trains exactly like SeqLoRA (same seeds, same matrix)", async () => {
  await initBackend("wasm");
  const joint = await run(createJoint(), 1, 3);
  const seq = await run(createSeqLora(), 1, 3);
  assertEquals(joint.rows, seq.rows);
  assertEquals(joint.head, seq.head);
});

Deno.test("joint: task t trains on the union of tasks 1..t", async () => {
  await initBackend("wasm");
  const { timings, stream: s } = await run(createJoint(), 2, null);
  assertEquals(timings[0].trainImages, s.tasks[0].train.length);
  assertEquals(timings[1].trainImages, s.tasks[0].train.length + s.tasks[1].train.length);
  assert(createJoint().replayAll);
});
