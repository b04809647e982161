import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/backend.ts";
import { imageBatch } from "../../lib/data/batches.ts";
import { createHideLora } from "../../lib/methods/hide_lora.ts";
import {
  alignHead,
  type ClassGaussian,
  classGaussians,
  createGaussianSampler,
  createHideLoraVit,
  HIDE_LORA_VIT_DEFAULTS,
  inferTasks,
  ldaHead,
  type TiiModel,
} from "../../lib/methods/hide_lora_vit.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { LIVE_ADAPTER, withActiveAdapter } from "../../lib/models/lora.ts";
import type { VitClassifier } from "../../lib/models/vit_classifier.ts";
import { Rng } from "../../lib/random.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { CONFIG, microModel, silentRecorder, stream } from "./helpers.ts";

const HIDE_SCHEDULE = {
  epochs: HIDE_LORA_VIT_DEFAULTS.tiiEpochs,
  samplesPerClass: HIDE_LORA_VIT_DEFAULTS.alignSamplesPerClass,
  batchSize: HIDE_LORA_VIT_DEFAULTS.alignBatchSize,
  lr: HIDE_LORA_VIT_DEFAULTS.alignLr,
  momentum: HIDE_LORA_VIT_DEFAULTS.alignMomentum,
  weightDecay: HIDE_LORA_VIT_DEFAULTS.alignWeightDecay,
};

const SCHEDULE = {
  epochs: 1,
  samplesPerClass: 1,
  batchSize: 2,
  lr: 0.5,
  momentum: 0,
  weightDecay: 0,
};

Deno.test("hide-lora (ViT) options: defaults recorded, bad values refused, factory dispatches on track", () => {
  const vit = createHideLora({}, { track: "vit" });
  assertEquals(vit.options(), { ...HIDE_LORA_VIT_DEFAULTS });
  assertEquals(vit.name, "hide-lora");
  assertEquals(createHideLora({}, { track: "lm" }).options().temperature, 0.8);
  assertThrows(() => createHideLoraVit({ tiiFeatures: "all-tasks" }), Error, "first-task");
  assertThrows(() => createHideLoraVit({ alignEpochs: 1.5 }), Error, "integer");
  assertThrows(() => createHideLoraVit({ lambda1: 1 }), Error, "unknown");
  assertThrows(() => createHideLoraVit({ alignMomentum: 1 }), Error, "alignMomentum");
});

Deno.test("classGaussians: hand means, unbiased covariances plus ridge, full and diagonal", () => {
  // Class 3: rows (0, 0), (2, 2), (4, 1); class 1: one row (5, 5).
  const f = Float32Array.from([0, 0, 2, 2, 5, 5, 4, 1]);
  const full = classGaussians(f, [3, 3, 1, 3], { dim: 2, covariance: "full", ridge: 0.5 });
  assertEquals([...full.keys()], [1, 3]);
  const g = full.get(3)!;
  assertEquals([...g.mean], [2, 1]);
  // Centred rows (−2, −1), (0, 1), (2, 0): Σ = [[8, 2], [2, 2]] / 2 + 0.5·I.
  assertEquals([...g.cov], [4.5, 1, 1, 1.5]);
  assertEquals(g.count, 3);
  assertEquals([...full.get(1)!.cov], [0.5, 0, 0, 0.5]);
  const diag = classGaussians(f, [3, 3, 1, 3], { dim: 2, covariance: "diagonal", ridge: 0 });
  assertEquals([...diag.get(3)!.cov], [4, 1]);
  assertThrows(
    () => classGaussians(f, [3, 3], { dim: 2, covariance: "full", ridge: 0 }),
    Error,
    "width",
  );
});

Deno.test("createGaussianSampler: sample moments match the stored mean and covariance", async () => {
  await initBackend("cpu");
  const n = 20000;
  const classes: ClassGaussian[] = [
    { mean: Float32Array.from([1, -1]), cov: Float32Array.from([2, 0.8, 0.8, 1]), count: 9 },
    { mean: Float32Array.from([0, 3]), cov: Float32Array.from([0.25, 0, 0, 4]), count: 9 },
  ];
  const sampler = createGaussianSampler(classes, { dim: 2 });
  const x = sampler.sample(n, 7);
  assertEquals(x.shape, [2 * n, 2]);
  const v = await x.data();
  for (const [c, g] of classes.entries()) {
    const m = [0, 0];
    for (let i = c * n; i < (c + 1) * n; i++) for (let j = 0; j < 2; j++) m[j] += v[i * 2 + j] / n;
    const s = [0, 0, 0, 0];
    for (let i = c * n; i < (c + 1) * n; i++) {
      for (let j = 0; j < 2; j++) {
        for (let k = 0; k < 2; k++) {
          s[j * 2 + k] += (v[i * 2 + j] - m[j]) * (v[i * 2 + k] - m[k]) / (n - 1);
        }
      }
    }
    m.forEach((mj, j) => assertAlmostEquals(mj, g.mean[j], 0.05));
    s.forEach((sj, j) => assertAlmostEquals(sj, g.cov[j], 0.1));
  }
  // Same seed, same draws.
  const again = sampler.sample(n, 7);
  assertEquals(await again.data(), v);
  tf.dispose([x, again]);
  sampler.dispose();
  // A diagonal covariance: std √4 = 2 on the second coordinate.
  const d = createGaussianSampler([{
    mean: Float32Array.from([0, 0]),
    cov: Float32Array.from([0, 4]),
    count: 1,
  }], {
    dim: 2,
  });
  const y = await d.sample(n, 3).data();
  let s0 = 0;
  let s1 = 0;
  for (let i = 0; i < n; i++) {
    s0 += y[i * 2] ** 2 / n;
    s1 += y[i * 2 + 1] ** 2 / n;
  }
  assertEquals(s0, 0);
  assertAlmostEquals(s1, 4, 0.15);
  d.dispose();
});

Deno.test("alignHead: one SGD step matches the hand gradient; longer alignment cuts the loss", async () => {
  await initBackend("cpu");
  const before = tf.memory().numTensors;
  // Zero-variance classes: the samples are the means (1, 0) and (0, 2).
  const point = (m: number[]): ClassGaussian => ({
    mean: Float32Array.from(m),
    cov: new Float32Array(m.length),
    count: 1,
  });
  const w = tf.tidy(() => tf.variable(tf.zeros([2, 2])));
  const b = tf.tidy(() => tf.variable(tf.zeros([2])));
  const head = {
    variables: [w, b],
    logits: (f: tf.Tensor2D) => tf.add(tf.matMul(f, w), b) as tf.Tensor2D,
  };
  const losses = await alignHead(head, {
    gaussians: [point([1, 0]), point([0, 2])],
    columns: [0, 1],
    schedule: SCHEDULE,
    rng: new Rng(0),
  });
  // Zero logits: loss log 2; ∂L/∂logits = (softmax − y)/B = ±0.25; ∂L/∂W = Σ xᵢ ⊗ gᵢ.
  assertAlmostEquals(losses[0], Math.log(2), 1e-6);
  const got = await w.data();
  [0.125, -0.125, -0.25, 0.25].forEach((e, i) => assertAlmostEquals(got[i], e, 1e-6));
  assertEquals([...await b.data()], [0, 0]);
  tf.dispose([w, b]);

  // Five head outputs, three classes on columns 4, 0, 2: the others stay bit-identical.
  const rng = new Rng(1);
  const classes: ClassGaussian[] = [[2, 0, 0], [0, 2, 0], [0, 0, 2]].map((m) => ({
    mean: Float32Array.from(m),
    cov: Float32Array.from([0.3, 0, 0, 0, 0.3, 0, 0, 0, 0.3]),
    count: 10,
  }));
  const init = Float32Array.from({ length: 15 }, () => rng.normal() * 0.1);
  const w5 = tf.tidy(() => tf.variable(tf.tensor2d(init, [3, 5])));
  const b5 = tf.tidy(() => tf.variable(tf.zeros([5])));
  const l5 = await alignHead(
    { variables: [w5, b5], logits: (f) => tf.add(tf.matMul(f, w5), b5) as tf.Tensor2D },
    {
      gaussians: classes,
      columns: [4, 0, 2],
      schedule: {
        epochs: 10,
        samplesPerClass: 32,
        batchSize: 16,
        lr: 0.05,
        momentum: 0.9,
        weightDecay: 0,
      },
      rng,
    },
  );
  assertEquals(l5.length, 10);
  assert(l5[9] < 0.2 * l5[0], `loss ${l5[0]} → ${l5[9]}`);
  const after = await w5.data();
  for (let r = 0; r < 3; r++) {
    for (const col of [1, 3]) assertEquals(after[r * 5 + col], init[r * 5 + col]);
    assert(after[r * 5 + 4] !== init[r * 5 + 4]);
  }
  tf.dispose([w5, b5]);
  assertEquals(tf.memory().numTensors, before);
});

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

/** All test images of the stream, normalised like the trainer's. */
function testImages(s: ReturnType<typeof stream>): tf.Tensor4D {
  const idx = Int32Array.from(s.tasks.flatMap((t) => [...t.test]));
  const batch = imageBatch(s.test, idx, {
    labelToOutput: s.labelToOutput,
    mean: CONFIG.mean,
    std: CONFIG.std,
  });
  return tf.tensor4d(batch.x, [idx.length, s.test.size, s.test.size, 3]);
}

async function adapterValues(model: VitClassifier, name: string): Promise<Float32Array[]> {
  return await Promise.all(
    model.loraSites().flatMap((s) => {
      const p = name === LIVE_ADAPTER ? s : s.pool!.find((q) => q.name === name)!;
      return [p.a.data(), p.b.data()];
    }),
  ) as Float32Array[];
}

const VARIANTS: [string, Record<string, unknown>, "cpu" | "wasm"][] = [
  ["defaults (first-task TII, head rule, full covariance)", {}, "cpu"],
  ["LDA rule", { tiiRule: "lda" }, "cpu"],
  [
    "pretrained TII, nearest mean, diagonal, adapter copied (wasm)",
    {
      tiiFeatures: "pretrained",
      tiiRule: "nearest-mean",
      covariance: "diagonal",
      adapterInit: "previous",
    },
    "wasm",
  ],
];

for (const [label, options, backend] of VARIANTS) {
  Deno.test(`hide-lora (ViT), ${label}: current-task reads only; old adapters frozen; no leaks; state round-trip`, async () => {
    await initBackend(backend);
    const s = stream(3);
    const model = microModel(s.classOrder.length, 0.1);
    const inner = createHideLoraVit(options);
    const sites = model.loraSites();
    let current = -1;
    const reads: { current: number; task: number; indices: readonly number[] }[] = [];
    const finals: Float32Array[][] = [];
    const tensorsAfterTask: number[] = [];
    const summaries: Record<string, unknown>[] = [];
    const method: ContinualMethod = {
      ...inner,
      beginTask: async (ctx) => {
        current = ctx.taskIndex;
        await inner.beginTask(ctx);
      },
      endTask: async (ctx) => {
        await inner.endTask(ctx);
        finals.push(await adapterValues(model, LIVE_ADAPTER));
        summaries.push(inner.taskSummary!());
        tensorsAfterTask.push(tf.memory().numTensors);
      },
    };
    const before = tf.memory().numTensors;
    await trainClassIncremental(s, {
      model,
      method,
      config: { ...CONFIG, epochs: 2 },
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: silentRecorder(),
      onExampleRead: (task, indices) => reads.push({ current, task, indices }),
    });

    // Every read is of the task being trained, and each task's whole training split is read.
    assert(reads.length > 0);
    for (const r of reads) assertEquals(r.task, r.current, "a read of another task");
    for (let t = 0; t < 3; t++) {
      const seen = new Set(reads.filter((r) => r.task === t).flatMap((r) => [...r.indices]));
      assertEquals(seen.size, s.tasks[t].train.length, `task ${t} positions read`);
    }

    // Finished adapters are frozen and bit-identical to their values at the end of their task.
    assertEquals(sites.map((x) => x.pool!.map((p) => p.name)), sites.map(() => ["task0", "task1"]));
    for (const t of [0, 1]) {
      assertEquals(await adapterValues(model, `task${t}`), finals[t], `task${t}`);
      assert(sites.every((x) => x.pool!.every((p) => !p.a.trainable && !p.b.trainable)));
    }
    // The live adapter after task 3 is a different adapter.
    assert(finals[2][0].some((v, i) => v !== finals[1][0][i]));

    // Tensors: the only growth from task to task is the frozen adapter (A and B per site).
    assertEquals(tensorsAfterTask[1] - tensorsAfterTask[0], 2 * sites.length);
    assertEquals(tensorsAfterTask[2] - tensorsAfterTask[1], 2 * sites.length);

    // Alignment ran after tasks 2 and 3 and lowered the loss on the sampled features.
    assertEquals(summaries[0].alignmentLoss, null);
    for (const t of [1, 2]) {
      const [first, last] = summaries[t].alignmentLoss as number[];
      assert(last < first, `task ${t + 1} alignment loss ${first} → ${last}`);
      assertEquals(summaries[t].classesWithStatistics, 4 * (t + 1));
    }

    // Training-time forward with a task id uses only that task's adapter.
    const x = testImages(s);
    const byId = inner.forward!(model, x, { training: false, taskIndex: 0 });
    const alone = withActiveAdapter(sites, () => model.logits(x, { training: false }), {
      adapter: "task0",
    });
    assertEquals(await byId.data(), await alone.data());
    // Evaluation: every row is the logits of one task's adapter alone, and TII uses more than one.
    const evalLogits = inner.forward!(model, x, { training: false });
    const perTask = await Promise.all(["task0", "task1", LIVE_ADAPTER].map(async (adapter) => {
      const l = withActiveAdapter(sites, () => model.logits(x, { training: false }), { adapter });
      const v = await l.data();
      l.dispose();
      return v;
    }));
    const got = await evalLogits.data();
    const k = s.classOrder.length;
    const used = new Set<number>();
    for (let i = 0; i < x.shape[0]; i++) {
      const row = got.subarray(i * k, (i + 1) * k);
      const match = perTask.findIndex((p) =>
        p.subarray(i * k, (i + 1) * k).every((v, j) => Math.abs(v - row[j]) < 1e-5)
      );
      assert(match >= 0, `row ${i} is no single adapter's logits`);
      used.add(match);
    }
    assert(used.size > 1, "TII sent every test image to the same task");

    // state() → JSON → restore() in a fresh method gives bit-identical evaluation logits.
    const state = inner.state();
    const json = JSON.parse(JSON.stringify(state.json));
    inner.dispose();
    assert(sites.every((x) => x.pool!.length === 0));
    const again = createHideLora(options, { track: "vit" });
    again.restore({ ...state, json });
    const restored = again.forward!(model, x, { training: false });
    assertEquals(await restored.data(), got);
    tf.dispose([x, byId, alone, evalLogits, restored]);
    again.dispose();
    assertEquals(tf.memory().numTensors, before);
    model.dispose();
  });
}

Deno.test("hide-lora (ViT): a model without features() is refused with a clear error", async () => {
  await initBackend("cpu");
  const s = stream(2);
  const inner = microModel(s.classOrder.length);
  const model = { ...inner, features: undefined, headLogits: undefined };
  await assertRejects(
    () =>
      trainClassIncremental(s, {
        model,
        method: createHideLoraVit(),
        config: { ...CONFIG, maxStepsPerEpoch: 1 },
        rngs: { data: new Rng(1), method: new Rng(2) },
        recorder: silentRecorder(),
      }),
    Error,
    "features()",
  );
  inner.dispose();
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

Deno.test("classifier alignment raises the old classes' accuracy of a head trained only on the new task", async () => {
  await initBackend("cpu");
  const g = (mean: number[]): ClassGaussian => ({
    mean: Float32Array.from(mean),
    cov: Float32Array.from([0.25, 0, 0, 0.25]),
    count: 50,
  });
  // Task 1: classes 0 (−3, 0) and 1 (0, −3); task 2: classes 2 (3, 0) and 3 (0, 3).
  const gaussians = [g([-3, 0]), g([0, -3]), g([3, 0]), g([0, 3])];
  // The head after training task 2 alone: new classes' columns learned, old ones at their
  // (small) values, old-class features fall to whichever new class is less negative.
  const w = tf.variable(tf.tensor2d([[0, 0, 2, 0], [0, 0, 0, 2]]));
  const b = tf.variable(tf.tensor1d([0, 0, 0, 0]));
  const head = {
    variables: [w, b],
    logits: (f: tf.Tensor2D) => tf.add(tf.matMul(f, w), b) as tf.Tensor2D,
  };
  const test = createGaussianSampler(gaussians.slice(0, 2), { dim: 2 });
  const accuracyOld = () =>
    tf.tidy(() => {
      const x = test.sample(200, 99); // 200 of class 0, then 200 of class 1
      const pred = tf.argMax(head.logits(x), 1).dataSync();
      let ok = 0;
      for (let i = 0; i < 400; i++) if (pred[i] === (i < 200 ? 0 : 1)) ok++;
      return ok / 400;
    });
  const before = accuracyOld();
  await alignHead(head, {
    gaussians,
    columns: [0, 1, 2, 3],
    schedule: {
      epochs: 10,
      samplesPerClass: 64,
      batchSize: 64,
      lr: 0.05,
      momentum: 0.9,
      weightDecay: 0,
    },
    rng: new Rng(4),
  });
  const after = accuracyOld();
  assert(before < 0.6, `before alignment ${before}`);
  assert(after > 0.95, `after alignment ${after}`);
  test.dispose();
  tf.dispose([w, b]);
});
