import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import { createDualPrompt } from "../../../lib/methods/dual_prompt/vit.ts";
import type { ContinualMethod, MethodState } from "../../../lib/methods/method.ts";
import type { PrefixPrompt } from "../../../lib/models/prompt.ts";
import { VIT_PRESETS } from "../../../lib/models/vit.ts";
import { createVitClassifier } from "../../../lib/models/vit_classifier.ts";
import { Rng } from "../../../lib/random.ts";
import { type LossRecord, trainClassIncremental } from "../../../lib/train/class_incremental.ts";
import {
  changed,
  CONFIG,
  context,
  frozenValues,
  images,
  microModel,
  silentRecorder,
  stream,
} from "../helpers.ts";

// Micro has depth 2: G-prompt in block 0, E-prompts in block 1.
const MICRO_BLOCKS = { gBlocks: [0], eBlocks: [1], gLength: 2, eLength: 3 };

Deno.test("dualprompt: options, defaults, LM track refused; blocks clamped to the depth (tiny-p8: G [0, 1], E [2, 3])", async () => {
  await initBackend("cpu");
  assertEquals(createDualPrompt({}, { track: "vit" }).options(), {
    gLength: 5,
    eLength: 20,
    gBlocks: [0, 1],
    eBlocks: [2, 3, 4],
    pullWeight: 1,
    transferPrompt: true,
  });
  assertThrows(() => createDualPrompt({}, { track: "lm" }), Error, "not built on the lm track");
  assertThrows(() => createDualPrompt({ eBlocks: [1, 1] }), Error, "twice");
  const tiny = createVitClassifier(VIT_PRESETS["tiny-p8"], { numOutputs: 4, rng: new Rng(0) });
  const m = createDualPrompt({}, { track: "vit" });
  m.beginTask(context(tiny));
  assertEquals(m.taskSummary!(), { gBlocks: [0, 1], eBlocks: [2, 3], evalChoices: [0] });
  const st = m.state();
  assertEquals(st.arrays.g_prompt.shape, [2, 2, 5, 64]);
  assertEquals(st.arrays["e_prompt.0"].shape, [2, 2, 20, 64]);
  assertEquals(st.arrays["e_key.0"].shape, [64]);
  m.dispose();
  tiny.dispose();
  const micro = microModel(4);
  assertThrows(() => createDualPrompt({}).beginTask(context(micro)), Error, "depth 2; set eBlocks");
  micro.dispose();
});

Deno.test("dualprompt: evaluation uses the E-prompt of the nearest key per sample; training the true task's", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const x = images(3, 1);
  const q = model.queryFeatures!(x);
  const dim = 32;
  const qs = [0, 1, 2].map((i) => q.slice([i, 0], [1, dim]).dataSync() as Float32Array);
  const rng = new Rng(5);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  // Keys: task 0 = q2, task 1 = q1 + 0.1·q0, task 2 = 3·q0: sample 0 → task 2, 1 → 1, 2 → 0.
  const keys = [qs[2], qs[1].map((v, i) => v + 0.1 * qs[0][i]), qs[0].map((v) => 3 * v)];
  const g = rand(1 * 2 * 2 * dim);
  const es = [0, 1, 2].map(() => rand(1 * 2 * 3 * dim));
  const state: MethodState = {
    json: { gBlocks: [0], eBlocks: [1], dim, tasks: 3 },
    arrays: {
      g_prompt: { shape: [1, 2, 2, dim], data: g },
      ...Object.fromEntries(
        es.map((e, t) => [`e_prompt.${t}`, { shape: [1, 2, 3, dim], data: e }]),
      ),
      ...Object.fromEntries(keys.map((k, t) => [`e_key.${t}`, { shape: [dim], data: k }])),
    },
  };
  const method = createDualPrompt(MICRO_BLOCKS);
  method.restore(state);
  /** Logits with G on block 0 and, per sample, E-prompt `tasks[i]` on block 1. */
  const expected = (tasks: number[]) =>
    tf.tidy(() => {
      const b = tasks.length;
      const gk = tf.tile(tf.tensor3d(g.subarray(0, 2 * dim), [1, 2, dim]), [b, 1, 1]);
      const gv = tf.tile(tf.tensor3d(g.subarray(2 * dim), [1, 2, dim]), [b, 1, 1]);
      const ek = tasks.flatMap((t) => [...es[t].subarray(0, 3 * dim)]);
      const ev = tasks.flatMap((t) => [...es[t].subarray(3 * dim)]);
      const prefixes = new Map<number, PrefixPrompt>([
        [0, { key: gk as tf.Tensor3D, value: gv as tf.Tensor3D }],
        [1, { key: tf.tensor3d(ek, [b, 3, dim]), value: tf.tensor3d(ev, [b, 3, dim]) }],
      ]);
      return model.promptedLogits!(x, { training: false, prompts: { prefixes } });
    });
  const evalLogits = method.forward!(model, x, { training: false });
  const want = expected([2, 1, 0]);
  assertEquals([...evalLogits.dataSync()], [...want.dataSync()]);
  const wrong = expected([0, 1, 2]);
  assert(Math.max(...wrong.dataSync().map((v, i) => Math.abs(v - want.dataSync()[i]))) > 1e-4);
  assertEquals((method.taskSummary!() as { evalChoices: number[] }).evalChoices, [1, 1, 1]);
  // With the task given (training, or the trainer's batch logits), every sample uses that task's.
  const given = method.forward!(model, x, { training: false, taskIndex: 1 });
  const want1 = expected([1, 1, 1]);
  assertEquals([...given.dataSync()], [...want1.dataSync()]);
  tf.dispose([x, q, evalLogits, want, wrong, given, want1]);
  method.dispose();
  model.dispose();
});

Deno.test("dualprompt: training moves G, the task's E-prompt and key and the head only; old E-prompts and the backbone stay bit-identical; no leaks; state/restore round trip", async () => {
  await initBackend("cpu");
  const model = microModel(8);
  for (const s of model.loraSites()) tf.tidy(() => s.b.assign(tf.onesLike(s.b).mul(0.05)));
  const frozen = frozenValues(model);
  const head0 = model.headVariables().map((v) => (v.dataSync() as Float32Array).slice());
  const method = createDualPrompt(MICRO_BLOCKS);
  const tensors = tf.memory().numTensors;
  const begun: MethodState[] = [];
  const ended: MethodState[] = [];
  const losses: LossRecord[] = [];
  const wrapped: ContinualMethod = {
    ...method,
    beginTask: async (ctx) => {
      await method.beginTask(ctx);
      begun.push(method.state());
    },
  };
  await trainClassIncremental(stream(), {
    model,
    method: wrapped,
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: {
      ...silentRecorder(losses),
      checkpoint: (c) => {
        ended.push(c.method);
        return Promise.resolve();
      },
    },
  });
  for (const [name, after] of frozenValues(model)) assertEquals(after, frozen.get(name), name);
  assert(model.headVariables().every((v, i) => changed(v.dataSync() as Float32Array, head0[i])));
  const arr = (s: MethodState, k: string) => s.arrays[k].data;
  for (const t of [0, 1]) {
    assert(changed(arr(begun[t], "g_prompt"), arr(ended[t], "g_prompt")), `G, task ${t}`);
    assert(changed(arr(begun[t], `e_prompt.${t}`), arr(ended[t], `e_prompt.${t}`)), `E ${t}`);
    assert(changed(arr(begun[t], `e_key.${t}`), arr(ended[t], `e_key.${t}`)), `key ${t}`);
  }
  // Task 2's E-prompt starts as task 1's (transfer); task 1's does not move in task 2.
  assertEquals(arr(begun[1], "e_prompt.1"), arr(ended[0], "e_prompt.0"));
  assertEquals(arr(ended[1], "e_prompt.0"), arr(ended[0], "e_prompt.0"));
  assertEquals(arr(ended[1], "e_key.0"), arr(ended[0], "e_key.0"));
  // λ·mean(1 − cos(q, key_t)) with λ = 1 lies in [0, 2].
  const pulls = losses.filter((l) => l.term === "key_pull").map((l) => l.value);
  assertEquals(pulls.length, 4);
  assert(pulls.every((v) => v > 0 && v < 2), `${pulls}`);
  // The keys are pulled: the term falls within each task's 2 steps (lr 1e-2).
  assert(pulls[1] < pulls[0] && pulls[3] < pulls[2], `${pulls}`);
  const x = images(3, 9);
  const a = method.forward!(model, x, { training: false });
  const copy = createDualPrompt(MICRO_BLOCKS);
  copy.restore(method.state());
  const b = copy.forward!(model, x, { training: false });
  assertEquals([...b.dataSync()], [...a.dataSync()]);
  tf.dispose([x, a, b]);
  copy.dispose();
  method.dispose();
  assertEquals(tf.memory().numTensors, tensors);
  model.dispose();
});
