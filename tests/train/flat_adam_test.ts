import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { Rng } from "../../lib/random.ts";
import { FlatAdam, isFlatAdam } from "../../lib/train/flat_adam.ts";
import { createAdam, optimizerStep } from "../../lib/train/step.ts";
import { createVitClassifier } from "../../lib/models/vit_classifier.ts";
import { VIT_PRESETS } from "../../lib/models/vit.ts";

await initBackend("cpu");

const SHAPES: number[][] = [[3, 4], [7], [2, 2, 5]];

function randomArrays(rng: Rng, scale: number): Float32Array[] {
  return SHAPES.map((s) =>
    Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => scale * rng.normal())
  );
}

function makeVariables(prefix: string, init: Float32Array[]): tf.Variable[] {
  return init.map((d, i) => tf.variable(tf.tensor(d, SHAPES[i]), true, `${prefix}-${i}`));
}

function gradMap(vars: tf.Variable[], grads: Float32Array[]): tf.NamedTensorMap {
  return Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(grads[i], SHAPES[i])]));
}

async function values(vars: tf.Variable[]): Promise<number[][]> {
  return await Promise.all(vars.map(async (v) => Array.from(await v.data())));
}

function maxRelDiff(a: number[][], b: number[][]): number {
  let worst = 0;
  a.forEach((row, i) =>
    row.forEach((x, j) => {
      worst = Math.max(worst, Math.abs(x - b[i][j]) / Math.max(1e-6, Math.abs(b[i][j])));
    })
  );
  return worst;
}

Deno.test("FlatAdam: 20 steps, the learning rate changed on the way, bit for bit tf.train.adam's", async () => {
  const rng = new Rng(3);
  const init = randomArrays(rng, 1);
  const ours = makeVariables("flat", init);
  const theirs = makeVariables("tfjs", init);
  const flat = new FlatAdam({ lr: 1e-2, beta1: 0.9, beta2: 0.95, epsilon: 1e-8 });
  const adam: tf.Optimizer = tf.train.adam(1e-2, 0.9, 0.95, 1e-8);
  for (let step = 0; step < 20; step++) {
    const lr = step < 10 ? 1e-2 : 3e-3;
    flat.learningRate = lr;
    (adam as unknown as { learningRate: number }).learningRate = lr;
    const grads = randomArrays(rng, step % 3 === 0 ? 100 : 0.01);
    const g1 = gradMap(ours, grads);
    const g2 = gradMap(theirs, grads);
    flat.applyGradients(g1);
    adam.applyGradients(g2);
    tf.dispose([...Object.values(g1), ...Object.values(g2)]);
  }
  assertEquals(await values(ours), await values(theirs));
  assertEquals(flat.iterations, 20);
  tf.dispose([...ours, ...theirs]);
  adam.dispose();
});

Deno.test("FlatAdam.applyClipped: the global norm, and a clipped step as optimizerStep's tfjs path", async () => {
  // Hand-computed: gradients [3, 4] and [12] have norm 13; clipNorm 1 scales them by 1/13.
  const w = tf.variable(tf.tensor1d([0, 0]), true, "clip-w");
  const u = tf.variable(tf.tensor1d([0]), true, "clip-u");
  const flat = new FlatAdam({ lr: 0.1 });
  const g = { "clip-w": tf.tensor1d([3, 4]), "clip-u": tf.tensor1d([12]) };
  assertEquals(flat.applyClipped(g, { clipNorm: 1 }), 13);
  // First Adam step: m̂ = g', v̂ = g'², so w = −lr · g'/(|g'| + ε) = −0.1 · sign(g) (to float32).
  const [wv, uv] = [Array.from(await w.data()), Array.from(await u.data())];
  for (const x of [...wv, ...uv]) assert(Math.abs(x + 0.1) < 1e-6, `${x}`);
  tf.dispose([w, u, ...Object.values(g)]);

  // Against the tfjs path of optimizerStep (tf.train.adam after tf clipping), 10 steps.
  const rng = new Rng(5);
  const init = randomArrays(rng, 1);
  const ours = makeVariables("clip-flat", init);
  const theirs = makeVariables("clip-tfjs", init);
  const flatOpt = new FlatAdam({ lr: 1e-2 });
  const adam: tf.Optimizer = tf.train.adam(1e-2, 0.9, 0.999, 1e-8);
  const norms: number[][] = [];
  for (let step = 0; step < 10; step++) {
    const target = randomArrays(rng, 3);
    const loss = (vars: tf.Variable[]) => () => ({
      total: tf.addN(
        vars.map((v, i) => tf.sum(tf.square(tf.sub(v, tf.tensor(target[i], SHAPES[i]))))),
      ) as tf.Scalar,
      terms: {},
    });
    const a = await optimizerStep(ours, loss(ours), { optimizer: flatOpt, clipNorm: 1 });
    const b = await optimizerStep(theirs, loss(theirs), { optimizer: adam, clipNorm: 1 });
    norms.push([a.gradNorm, b.gradNorm]);
  }
  // The norm is summed as the cpu backend's Sum and AddN kernels sum it: the same bits.
  for (const [a, b] of norms) assertEquals(a, b);
  assertEquals(maxRelDiff(await values(ours), await values(theirs)), 0);
  tf.dispose([...ours, ...theirs]);
  adam.dispose();
});

Deno.test("FlatAdam state: getWeights → setWeights resumes the run; tfjs Adam's state loads too", async () => {
  const rng = new Rng(11);
  const init = randomArrays(rng, 1);
  const grads = Array.from({ length: 8 }, () => randomArrays(rng, 1));
  const run = (opt: tf.Optimizer, vars: tf.Variable[], from: number, to: number) => {
    for (let s = from; s < to; s++) {
      const g = gradMap(vars, grads[s]);
      opt.applyGradients(g);
      tf.dispose(Object.values(g));
    }
  };
  // Straight through: 8 steps.
  const straight = makeVariables("state-a", init);
  run(new FlatAdam({ lr: 0.05 }), straight, 0, 8);
  // 4 steps, state saved, a fresh optimiser restored, 4 more.
  const resumed = makeVariables("state-b", init);
  const first = new FlatAdam({ lr: 0.05 });
  run(first, resumed, 0, 4);
  const saved = await first.getWeights();
  assertEquals(saved.map((w) => w.name), [
    "iter",
    ...[0, 1, 2].map((i) => `state-b-${i}/m`),
    ...[0, 1, 2].map((i) => `state-b-${i}/v`),
  ]);
  const second = new FlatAdam({ lr: 0.05 });
  await second.setWeights(saved);
  assertEquals(second.iterations, 4);
  run(second, resumed, 4, 8);
  // β^t is recomputed as a power on restore (as tfjs does), so the two can differ in the last bit.
  assert(maxRelDiff(await values(resumed), await values(straight)) < 1e-6);
  // A tfjs Adam's state, loaded into FlatAdam, continues like tfjs's own Adam.
  const viaTfjs = makeVariables("state-c", init);
  const tfjsAdam = tf.train.adam(0.05, 0.9, 0.999, 1e-8);
  run(tfjsAdam, viaTfjs, 0, 4);
  const cross = new FlatAdam({ lr: 0.05 });
  await cross.setWeights(await tfjsAdam.getWeights());
  run(cross, viaTfjs, 4, 8);
  assert(maxRelDiff(await values(viaTfjs), await values(straight)) < 1e-6);
  tf.dispose([...straight, ...resumed, ...viaTfjs, ...saved.map((w) => w.tensor)]);
  tfjsAdam.dispose();
});

Deno.test("createAdam gives FlatAdam on cpu/wasm; a 20-step ViT LoRA run has the tfjs path's losses", async () => {
  assert(isFlatAdam(createAdam({ lr: 1e-3 })));
  assert(!isFlatAdam(tf.train.adam(1e-3)));
  const before = tf.memory().numTensors;
  const losses: number[][] = [];
  for (const kind of ["flat", "tfjs"] as const) {
    const model = createVitClassifier({
      ...VIT_PRESETS.micro,
      lora: { rank: 4, alpha: 8, dropout: 0.1 },
    }, {
      numOutputs: 10,
      rng: new Rng(0),
    });
    const vars = [...model.loraSites().flatMap((s) => [s.a, s.b]), ...model.headVariables()];
    const optimizer = kind === "flat"
      ? createAdam({ lr: 1e-2 })
      : tf.train.adam(1e-2, 0.9, 0.999, 1e-8);
    const data = new Rng(1);
    const c = VIT_PRESETS.micro;
    const x = Float32Array.from(
      { length: 4 * c.imageSize * c.imageSize * c.channels },
      () => data.normal(),
    );
    const y = Int32Array.from({ length: 4 }, () => data.int(10));
    const row: number[] = [];
    for (let step = 0; step < 20; step++) {
      const r = await optimizerStep(vars, () => ({
        total: tf.losses.softmaxCrossEntropy(
          tf.oneHot(tf.tensor1d(y, "int32"), 10),
          model.logits(tf.tensor4d(x, [4, c.imageSize, c.imageSize, c.channels]), {
            training: true,
            seed: step,
          }),
        ) as tf.Scalar,
        terms: {},
      }), { optimizer, clipNorm: 1 });
      row.push(r.total);
    }
    losses.push(row);
    optimizer.dispose();
    model.dispose();
  }
  const [flat, tfjs] = losses;
  assert(flat[19] < flat[0], `the loss falls: ${flat[0]} → ${flat[19]}`);
  for (let i = 0; i < 20; i++) {
    assert(
      Math.abs(flat[i] - tfjs[i]) <= 1e-5 * Math.abs(tfjs[i]),
      `step ${i}: ${flat[i]} vs ${tfjs[i]}`,
    );
  }
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("FlatAdam: no tensor left behind by applyGradients or minimize; a variable without a gradient is left as it is", () => {
  const w = tf.variable(tf.tensor1d([1, 2]), true, "flat-null-w");
  const u = tf.variable(tf.tensor1d([5]), true, "flat-null-u");
  const opt = new FlatAdam({ lr: 0.1 });
  const before = tf.memory().numTensors;
  const g = tf.tensor1d([0.5, -0.5]);
  opt.applyGradients({ "flat-null-w": g, "flat-null-u": null as unknown as tf.Tensor });
  g.dispose();
  // minimize outside any tidy: the loss's graph is tfjs's to free, the update is ours
  opt.minimize(() => tf.sum(tf.square(w)) as tf.Scalar, false, [w, u]);
  assertEquals(tf.memory().numTensors, before);
  // w moved twice (first step: −lr·sign(g) = [0.9, 2.1]), u never (its gradient is null both times)
  assertEquals(Array.from(u.dataSync()), [5]);
  assert(Math.abs(w.dataSync()[0] - 0.9) > 1e-3 && w.dataSync()[0] < 1);
  tf.dispose([w, u]);
});

Deno.test("FlatAdam: a restored slot takes its variable's name on the next step and refuses another shape", async () => {
  const a = tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, "flat-shape-a");
  const b = tf.variable(tf.tensor1d([1, 2, 3, 4]), true, "flat-shape-b");
  const first = new FlatAdam({ lr: 0.1 });
  const g = tf.ones([2, 2]);
  first.applyGradients({ "flat-shape-a": g });
  const saved = await first.getWeights();
  const second = new FlatAdam({ lr: 0.1 });
  await second.setWeights(saved.map((w, i) => i === 0 ? w : { ...w, name: `slot-${i}/m` }));
  second.applyGradients({ "flat-shape-a": g });
  const names = (await second.getWeights()).map((w) => w.name);
  assertEquals(names.slice(1, 2), ["flat-shape-a/m"]);
  const g4 = tf.ones([4]);
  assertThrows(
    () => second.applyGradients({ "flat-shape-b": g4 }),
    Error,
    "has shape [2,2]; flat-shape-b has [4]",
  );
  tf.dispose([a, b, g, g4, ...saved.map((w) => w.tensor)]);
});
