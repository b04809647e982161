import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createLwf, distillationLoss } from "../../lib/methods/lwf.ts";
import { Rng } from "../../lib/random.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { CONFIG, microModel, silentRecorder, stream } from "./helpers.ts";

Deno.test("lwf: the distillation term is zero when teacher and student agree, T²·KL otherwise", async () => {
  await initBackend("cpu");
  const z = tf.tensor3d([[[1, 2, 3], [0, -1, 4]]]);
  assertAlmostEquals(distillationLoss(z, z, { temperature: 2 }).dataSync()[0], 0, 1e-6);
  const t = tf.tensor2d([[0, 0]]);
  const s = tf.tensor2d([[2, 0]]);
  // p = (½, ½), q = softmax((1, 0)); KL = Σ p·log(p/q); × T² = 4.
  const q1 = Math.exp(1) / (Math.exp(1) + 1);
  const kl = 0.5 * Math.log(0.5 / q1) + 0.5 * Math.log(0.5 / (1 - q1));
  assertAlmostEquals(distillationLoss(t, s, { temperature: 2 }).dataSync()[0], 4 * kl, 1e-5);
  // Weights select rows: only the agreeing row counts.
  const both = distillationLoss(tf.concat([t, t]), tf.concat([s, t]), {
    temperature: 2,
    weights: new Float32Array([0, 1]),
  });
  assertAlmostEquals(both.dataSync()[0], 0, 1e-6);
  tf.dispose([z, t, s, both]);
});

Deno.test("lwf: no term on task 1; on task 2 the term starts at 0 (teacher = student) and moves", async () => {
  await initBackend("wasm");
  const s = stream();
  const model = microModel(s.classOrder.length); // dropout 0: the student's first step is the teacher
  const losses: { task: number; term: string; value: number; step?: number }[] = [];
  const lwf = createLwf({});
  const before = tf.memory().numTensors;
  await trainClassIncremental(s, {
    model,
    method: lwf,
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: silentRecorder(losses),
  });
  lwf.dispose();
  assertEquals(tf.memory().numTensors, before);
  assert(!losses.some((l) => l.task === 0 && l.term === "lwf"));
  const terms = losses.filter((l) => l.task === 1 && l.term === "lwf").map((l) => l.value);
  assert(terms.length >= 2, `terms ${terms}`);
  assertAlmostEquals(terms[0], 0, 1e-5);
  assert(terms[terms.length - 1] > 0, `terms ${terms}`);
  model.dispose();
});
