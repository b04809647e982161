import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import { alignHead } from "../../../lib/methods/hide_lora/alignment.ts";
import {
  buildTiiModel,
  inferTasks,
  ldaHead,
  type TiiClass,
  type TiiModel,
  trainTiiHead,
} from "../../../lib/methods/hide_lora/tii.ts";
import { HIDE_LORA_VIT_DEFAULTS } from "../../../lib/methods/hide_lora/vit.ts";
import { Rng } from "../../../lib/random.ts";

const HIDE_SCHEDULE = {
  epochs: HIDE_LORA_VIT_DEFAULTS.tiiEpochs,
  samplesPerClass: HIDE_LORA_VIT_DEFAULTS.alignSamplesPerClass,
  batchSize: HIDE_LORA_VIT_DEFAULTS.alignBatchSize,
  lr: HIDE_LORA_VIT_DEFAULTS.alignLr,
  momentum: HIDE_LORA_VIT_DEFAULTS.alignMomentum,
  weightDecay: HIDE_LORA_VIT_DEFAULTS.alignWeightDecay,
};

Deno.test("inferTasks: nearest mean and a trained TII head pick the right task on separated classes", async () => {
  await initBackend("cpu");
  // Classes 0, 1 belong to task 0; classes 2, 3 to task 1; means far apart.
  const means = [[5, 0, 0], [0, 5, 0], [0, 0, 5], [-5, 0, 0]];
  const tasks = [0, 0, 1, 1];
  const nearest: TiiModel = {
    rule: "nearest-mean",
    dim: 3,
    tasks,
    means: Float32Array.from(means.flat()),
    weight: new Float32Array(12),
    bias: new Float32Array(4),
  };
  const probe = tf.tensor2d([[4, 1, 0], [-4.5, 1, 1], [0, 1, 4], [1, 4, -1], [-1, 0, 0.5]]);
  assertEquals([...inferTasks(probe, nearest)], [0, 1, 1, 0, 1]);

  // The head rule: a zero head trained on samples of the class Gaussians.
  const w = tf.tidy(() => tf.variable(tf.zeros([3, 4])));
  const b = tf.tidy(() => tf.variable(tf.zeros([4])));
  await alignHead(
    { variables: [w, b], logits: (f) => tf.add(tf.matMul(f, w), b) as tf.Tensor2D },
    {
      gaussians: means.map((m) => ({
        mean: Float32Array.from(m),
        cov: Float32Array.from([1, 1, 1]),
        count: 10,
      })),
      columns: [0, 1, 2, 3],
      schedule: { ...HIDE_SCHEDULE },
      rng: new Rng(4),
    },
  );
  const head: TiiModel = {
    ...nearest,
    rule: "head",
    weight: await w.data() as Float32Array,
    bias: await b.data() as Float32Array,
  };
  assertEquals([...inferTasks(probe, head)], [0, 1, 1, 0, 1]);
  assertThrows(() => inferTasks(tf.zeros([1, 2]) as tf.Tensor2D, head), Error, "[B, 3]");
  tf.dispose([w, b, probe]);
});

Deno.test("ldaHead: hand weights and biases (diagonal and full pooled covariance); picks the likelier class", () => {
  const g = (mean: number[], cov: number[]) => ({
    mean: Float32Array.from(mean),
    cov: Float32Array.from(cov),
    count: 5,
  });
  // Diagonal: pooled Σ = diag(2, 2): w = μ/2, b = −|μ|²/4.
  const diag = ldaHead([g([2, 0], [1, 3]), g([0, 4], [3, 1])]);
  assertEquals(diag.weights.map((w) => [...w]), [[1, 0], [0, 2]]);
  assertEquals(diag.biases, [-1, -4]);
  // Full: Σ = [[2, 1], [1, 2]] (both classes), Σ⁻¹ = [[2, −1], [−1, 2]] / 3.
  const full = ldaHead([g([3, 0], [2, 1, 1, 2]), g([0, 3], [2, 1, 1, 2])]);
  const close = (a: number[], b: number[]) =>
    a.forEach((v, i) => assertAlmostEquals(v, b[i], 1e-6));
  close([...full.weights[0]], [2, -1]);
  close([...full.weights[1]], [-1, 2]);
  close(full.biases, [-3, -3]);
  // f = (2, 0.5) is nearer class 0 in Mahalanobis distance: score 0 = 3.5 − 3 > score 1 = −1 − 3.
  const score = (k: number) => full.weights[k][0] * 2 + full.weights[k][1] * 0.5 + full.biases[k];
  assert(score(0) > score(1));
});

Deno.test("buildTiiModel: class-major means, [dim, C] head weight; trainTiiHead writes the trained columns back", async () => {
  await initBackend("cpu");
  const before = tf.memory().numTensors;
  const cls = (task: number, mean: number[]): TiiClass => ({
    task,
    tii: { mean: Float32Array.from(mean), cov: Float32Array.from([1, 1]), count: 5 },
    tiiWeight: Float32Array.from(mean),
    tiiBias: task,
  });
  const classes = [cls(0, [4, 0]), cls(0, [0, 4]), cls(1, [-4, 0])];
  const tii = buildTiiModel(classes, { rule: "nearest-mean" });
  assertEquals(tii.rule, "nearest-mean");
  assertEquals(tii.dim, 2);
  assertEquals(tii.tasks, [0, 0, 1]);
  assertEquals([...tii.means], [4, 0, 0, 4, -4, 0]);
  assertEquals([...tii.weight], [4, 0, -4, 0, 4, 0]);
  assertEquals([...tii.bias], [0, 0, 1]);
  // The head starts from the columns above and moves; inference then picks the right task.
  const losses = await trainTiiHead(classes, {
    schedule: { ...HIDE_SCHEDULE, epochs: 5 },
    rng: new Rng(3),
  });
  assertEquals(losses.length, 5);
  assert(classes.some((c, k) => c.tiiBias !== [0, 0, 1][k]), "biases trained");
  const head = buildTiiModel(classes, { rule: "head" });
  const probe = tf.tensor2d([[3, 0.5], [0.5, 3], [-3, 0]]);
  assertEquals([...inferTasks(probe, head)], [0, 0, 1]);
  probe.dispose();
  assertEquals(tf.memory().numTensors, before);
});
