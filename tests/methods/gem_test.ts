import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createGem, GEM_DEFAULTS, gemVariables } from "../../lib/methods/gem.ts";
import type { ContinualMethod, ExampleAccess, MethodContext } from "../../lib/methods/method.ts";
import { gemProject } from "../../lib/methods/qp.ts";
import type { AdaptedModel } from "../../lib/models/backbone.ts";
import { createDecoder, DECODER_PRESETS, lmAdaptedModel } from "../../lib/models/decoder.ts";
import { Rng } from "../../lib/random.ts";
import { ByteTokenizer } from "../../lib/text/byte_tokenizer.ts";
import type { TrainerCheckpoint } from "../../lib/train/checkpoint.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { imageExamples, lmExamples } from "../../lib/train/example_access.ts";
import { type LmTask, trainLmIncremental } from "../../lib/train/lm_incremental.ts";
import { CONFIG, context, microModel, silentRecorder, stream } from "./helpers.ts";

const dot = (a: ArrayLike<number>, b: ArrayLike<number>, from = 0, to = a.length) => {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i] * b[i];
  return s;
};
const norm = (a: ArrayLike<number>) => Math.sqrt(dot(a, a));

function offsets(vars: tf.Variable[]): number[] {
  return vars.reduce((o, v) => [...o, o[o.length - 1] + v.size], [0]);
}

/** The flat gradient of `f` w.r.t. `vars` (zeros where a variable has none). */
function flatGrad(vars: tf.Variable[], f: () => tf.Scalar): Float64Array {
  const off = offsets(vars);
  const out = new Float64Array(off[off.length - 1]);
  tf.tidy(() => {
    const { grads } = tf.variableGrads(f, vars);
    vars.forEach((v, j) => grads[v.name] && out.set(grads[v.name].dataSync(), off[j]));
  });
  return out;
}

/** Run `adjustGradients` on a flat gradient (rounded to float32); returns the flat result. */
function adjust(
  method: ContinualMethod,
  ctx: MethodContext,
  vars: tf.Variable[],
  g: Float64Array,
): Float64Array {
  const off = offsets(vars);
  const out = new Float64Array(g.length);
  tf.tidy(() => {
    const grads = Object.fromEntries(vars.map((v, j) => [
      v.name,
      tf.tensor(Float32Array.from(g.subarray(off[j], off[j + 1])), v.shape),
    ]));
    const adjusted = method.adjustGradients!(ctx, grads);
    vars.forEach((v, j) => out.set(adjusted[v.name].dataSync(), off[j]));
  });
  return out;
}

/**
 * Train nothing on tasks 0..t−1 (memories chosen at their end), then at task t: the
 * method's memory gradients, a gradient that conflicts with task 0's, its projection,
 * and the same gradients recomputed independently from the stored memory indices.
 */
async function projectAtTask(
  model: AdaptedModel,
  examplesFor: (t: number) => ExampleAccess,
  options: { t: number; gem: Record<string, unknown>; track: "vit" | "lm"; current: number[] },
) {
  const gem = createGem(options.gem, { track: options.track });
  const numTasks = options.t + 1;
  for (let t = 0; t < options.t; t++) {
    const ctx = context(model as never, { taskIndex: t, numTasks, examples: examplesFor(t) });
    await gem.beginTask(ctx);
    await gem.endTask(ctx);
  }
  const ctx = context(model as never, {
    taskIndex: options.t,
    numTasks,
    examples: examplesFor(options.t),
  });
  await gem.beginTask(ctx);
  const before = tf.memory().numTensors;
  await gem.beforeStep!(ctx);
  const memory = gem.state().json.memory as number[][];
  const ex = examplesFor(options.t);
  const vars = gemVariables(model, "lora");
  const rows = memory.map((idx, k) => flatGrad(vars, () => ex.loss(ex.select(k, idx))));
  const current = flatGrad(vars, () => ex.loss(ex.select(options.t, options.current)));
  // Push the real gradient against task 0's memory so that the constraint is violated.
  const s = 2 * norm(current) / norm(rows[0]);
  const g = Float64Array.from(Float32Array.from(current, (x, i) => x - s * rows[0][i]));
  assert(dot(g, rows[0]) < 0);
  const out = adjust(gem, ctx, vars, g);
  const summary = gem.taskSummary!();
  await gem.endTask(ctx);
  const leaked = tf.memory().numTensors - before;
  gem.dispose();
  return { memory, rows, g, out, summary, leaked, off: offsets(vars), options: gem.options() };
}

Deno.test("gem: the projected gradient of a micro ViT satisfies every memory constraint (flat and per tensor)", async () => {
  await initBackend("cpu");
  const s = stream(3);
  const model = microModel(s.classOrder.length);
  const examplesFor = (t: number) =>
    imageExamples(s, {
      currentTask: t,
      forward: (x, o) => model.logits(x, o),
      mean: CONFIG.mean,
      std: CONFIG.std,
    });
  for (const perTensor of [false, true]) {
    // margin = eps = 0: the exact projection, ⟨G[k], g̃⟩ ≥ 0.
    const r = await projectAtTask(model, examplesFor, {
      t: 2,
      gem: { memoryPerTask: 5, perTensor, margin: 0, eps: 0 },
      track: "vit",
      current: [0, 1, 2, 3, 4, 5, 6, 7],
    });
    assertEquals(r.leaked, 0);
    assertEquals(r.memory.map((m) => m.length), [5, 5]);
    assertEquals(r.summary.gemProjectedSteps, 1);
    const slices = perTensor ? r.off.length - 1 : 1;
    for (let j = 0; j < slices; j++) {
      const [a, b] = perTensor ? [r.off[j], r.off[j + 1]] : [0, r.g.length];
      for (const row of r.rows) {
        const ip = dot(row, r.out, a, b);
        const scale = norm(row.subarray(a, b)) * norm(r.g.subarray(a, b));
        assert(ip >= -1e-5 * scale, `slice ${j}: ⟨G, g̃⟩ = ${ip} (scale ${scale})`);
      }
    }
    assert(dot(r.rows[0], r.out) >= -1e-5 * norm(r.rows[0]) * norm(r.g));
    // The default margin and eps: the method's output is gemProject's on the same numbers.
    const d = await projectAtTask(model, examplesFor, {
      t: 2,
      gem: { memoryPerTask: 5, perTensor },
      track: "vit",
      current: [0, 1, 2, 3, 4, 5, 6, 7],
    });
    assertEquals(d.options.margin, 0.05);
    assertEquals(d.memory, r.memory, "the same rng draws");
    for (let j = 0; j < slices; j++) {
      const [a, b] = perTensor ? [d.off[j], d.off[j + 1]] : [0, d.g.length];
      const want = gemProject(d.rows.map((x) => x.subarray(a, b)), d.g.subarray(a, b), {
        margin: 0.05,
        eps: 1e-3,
      });
      const tol = 1e-5 * Math.max(...Array.from(want.gradient, Math.abs));
      for (let i = a; i < b; i++) assertAlmostEquals(d.out[i], want.gradient[i - a], tol);
      if (want.projected) {
        d.rows.forEach((row, k) =>
          assert(dot(row, d.out, a, b) >= -1e-3 * want.v![k] - 1e-5 * norm(row) * norm(d.g))
        );
      }
    }
  }
  model.dispose();
});

function lmTasks(n = 3): LmTask[] {
  const make = (name: string, split: string, k: number) =>
    Array.from(
      { length: k },
      (_, i) => ({ prompt: `${name} ${split}${i}:`, answer: `${split}${i}` }),
    );
  return ["alpha", "beta", "gamma"].slice(0, n).map((name, t) => ({
    name,
    train: make(name, "tr", 6 + t),
    test: make(name, "te", 2),
    metric: "x",
  }));
}

function byteMicro() {
  return createDecoder({
    ...DECODER_PRESETS["byte-micro"],
    lora: { rank: 2, alpha: 4, dropout: 0 },
  }, {
    rng: new Rng(0),
  });
}

Deno.test("gem: LM track, the byte-micro decoder's projected LoRA gradient satisfies the memory constraints", async () => {
  await initBackend("cpu");
  const decoder = byteMicro();
  const tasks = lmTasks(2);
  const examplesFor = (t: number) =>
    lmExamples(tasks, {
      currentTask: t,
      model: decoder,
      tokenizer: new ByteTokenizer(),
      maxLength: 32,
    });
  const r = await projectAtTask(lmAdaptedModel(decoder), examplesFor, {
    t: 1,
    gem: { margin: 0, eps: 0 },
    track: "lm",
    current: [0, 1, 2, 3],
  });
  assertEquals(r.options.memoryPerTask, 8);
  assertEquals(r.memory, [[0, 1, 2, 3, 4, 5]], "min(8, 6 examples)");
  assertEquals(r.leaked, 0);
  assertEquals(r.summary.gemProjectedSteps, 1);
  const ip = dot(r.rows[0], r.out);
  assert(ip >= -1e-5 * norm(r.rows[0]) * norm(r.g), `${ip}`);
  assert(dot(r.rows[0], r.g) < -0.5 * norm(r.rows[0]) * norm(r.g), "it was in conflict");
  decoder.dispose();
});

Deno.test("gem stored: the last step's applied gradient is stored; later gradients are projected against it per tensor", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const gem = createGem({ memoryGradient: "stored", perTensor: true, margin: 0, eps: 0 }, {
    track: "lm",
  });
  assertEquals(gem.options().memoryPerTask, null);
  const vars = gemVariables(model, "lora");
  const off = offsets(vars);
  const rng = new Rng(5);
  const random = () =>
    Float64Array.from(Float32Array.from({ length: off[off.length - 1] }, () => rng.normal()));
  // No ctx.examples: the stored variant reads no examples.
  const ctx0 = context(model, { epochs: 2, stepsPerEpoch: 2 });
  await gem.beginTask(ctx0);
  let last = new Float64Array();
  for (const epoch of [0, 1]) {
    for (const step of [0, 1]) {
      last = random();
      assertEquals(adjust(gem, { ...ctx0, epoch, step }, vars, last), last, "task 1: unchanged");
    }
  }
  await gem.endTask(ctx0);
  const state = gem.state();
  assertEquals(Array.from(state.arrays["grad.0"].data), Array.from(last));
  const ctx1 = context(model, { taskIndex: 1, epochs: 1, stepsPerEpoch: 3 });
  await gem.beginTask(ctx1);
  // Conflict on variable 0 only; every other slice agrees with the stored gradient.
  const g = Float64Array.from(last, (x, i) => (i < off[1] ? -x + 0.1 * rng.normal() : x));
  const out = adjust(gem, ctx1, vars, g);
  assertEquals(gem.taskSummary!().gemProjectedTensors, 1);
  assertAlmostEquals(dot(last, out, 0, off[1]), 0, 1e-5 * dot(last, last, 0, off[1]));
  for (let i = off[1]; i < g.length; i++) assertEquals(out[i], g[i]);
  // The flat QP would have seen no conflict at all (the other slices dominate).
  assert(dot(last, g) > 0);
  // Round trip.
  const copy = createGem({ memoryGradient: "stored", perTensor: true, margin: 0, eps: 0 }, {
    track: "lm",
  });
  copy.restore(state);
  assertEquals(copy.state(), state);
  assertThrows(
    () => createGem({}, { track: "lm" }).restore(state),
    Error,
    'of memoryGradient "stored"',
  );
  gem.dispose();
  copy.dispose();
  model.dispose();
});

Deno.test("gem: options, defaults per track and refused options", () => {
  assertEquals(createGem({}, { track: "vit" }).options(), { ...GEM_DEFAULTS.vit });
  assertEquals(createGem({}, { track: "lm" }).options(), {
    memoryGradient: "recompute",
    memoryPerTask: 8,
    perTensor: false,
    margin: 0.5,
    eps: 1e-3,
    params: "lora",
  });
  assertEquals(createGem({}, { track: "vit" }).options().margin, 0.05);
  assertThrows(() => createGem({ strength: 1 }), Error, "unknown GEM option(s): strength");
  assertThrows(
    () => createGem({ memoryGradient: "stored", memoryPerTask: 4 }),
    Error,
    "memoryPerTask has no effect",
  );
  assertThrows(() => createGem({ memoryPerTask: 0 }), Error, "positive integer");
  assertThrows(() => createGem({ margin: -0.1 }), Error, "margin must be");
  assertThrows(() => createGem({ memoryGradient: "last" }), Error, "memoryGradient must be");
  assertThrows(() => createGem({ params: "head" }), Error, "bad params");
});

for (const params of ["lora", "base"] as const) {
  Deno.test(`gem (${params}): class-incremental trainer, 3 tasks: memory reads only past tasks, no leaks, a resumed run is identical`, async () => {
    await initBackend("wasm");
    const s = stream(3);
    const options = { memoryPerTask: 6, params };
    const run = async (resume?: TrainerCheckpoint) => {
      const model = microModel(s.classOrder.length);
      const method = createGem(options, { track: "vit" });
      const reads: { during: number; task: number; indices: number[] }[] = [];
      const summaries: Record<string, unknown>[] = [];
      const checkpoints: TrainerCheckpoint[] = [];
      let done = resume ? resume.taskIndex + 1 : 0;
      const before = tf.memory().numTensors;
      await trainClassIncremental(s, {
        model,
        method,
        config: CONFIG,
        rngs: { data: new Rng(1), method: new Rng(2) },
        recorder: {
          ...silentRecorder(),
          taskDone: (_t, r) => {
            summaries.push(r.summary!);
            done++;
            return Promise.resolve();
          },
          checkpoint: (c) => {
            checkpoints.push(c);
            return Promise.resolve();
          },
        },
        resume,
        onExampleRead: (task, indices) => reads.push({ during: done, task, indices: [...indices] }),
      });
      const state = method.state();
      method.dispose();
      const leaked = tf.memory().numTensors - before;
      // Under "base" the base weights are trained too: the checkpoint must hold them.
      const weights = await Promise.all(
        gemVariables(model, params === "lora" ? "lora" : "all").map((v) =>
          v.data() as Promise<Float32Array>
        ),
      );
      const baseCount = model.baseVariables!().length;
      model.dispose();
      return { reads, summaries, checkpoints, state, leaked, weights, baseCount };
    };
    const full = await run();
    assertEquals(full.leaked, 0);
    const memory = full.state.json.memory as number[][];
    assertEquals(memory.length, 3);
    memory.forEach((m, k) => {
      assertEquals(m.length, 6);
      assert(m.every((i, n) => i >= 0 && i < s.tasks[k].train.length && (n === 0 || i > m[n - 1])));
    });
    // Reads: the memory of past tasks only (never the task being trained or a later one).
    assert(full.reads.length > 0);
    for (const r of full.reads) {
      assert(r.task < r.during, `read task ${r.task + 1} while training task ${r.during + 1}`);
      assertEquals(r.indices, memory[r.task]);
    }
    // 16 images per task in batches of 8: 2 steps; task 2 reads 1 memory, task 3 reads 2.
    assertEquals(full.reads.length, 2 * 1 + 2 * 2);
    assertEquals(full.summaries.map((x) => x.gemSteps), [2, 2, 2]);
    assertEquals(full.summaries[0].gemProjectedSteps, 0);
    assert(full.summaries.every((x) => (x.gemProjectedSteps as number) <= 2));
    assertEquals(full.summaries.map((x) => x.gemMemoryTasks), [1, 2, 3]);
    // Resume after task 2 from the checkpoint: the restored memory gives the same weights.
    const resumed = await run(full.checkpoints[1]);
    assertEquals(resumed.leaked, 0);
    assertEquals(resumed.state, full.state);
    assertEquals(resumed.weights, full.weights);
    assertEquals(resumed.reads, full.reads.filter((r) => r.during === 2));
    assertEquals(full.checkpoints[1].extra?.length, params === "base" ? full.baseCount : undefined);
  });
}

Deno.test("gem: LM trainer, recompute (paper) and stored per tensor (released code), no leaks", async () => {
  await initBackend("wasm");
  for (
    const options of [{ memoryPerTask: 4 }, { memoryGradient: "stored", perTensor: true }]
  ) {
    const decoder = byteMicro();
    const lora0 = await decoder.loraSites()[0].b.data();
    const method = createGem(options, { track: "lm" });
    const reads: { during: number; task: number }[] = [];
    const summaries: Record<string, unknown>[] = [];
    let done = 0;
    const before = tf.memory().numTensors;
    await trainLmIncremental(lmTasks(3), {
      model: decoder,
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
        maxPromptLength: 64,
        maxNewTokens: 1,
        evalBatchSize: 8,
        temperature: 0,
        maxTestExamples: 1,
      },
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: {
        taskDone: (_t, r) => {
          summaries.push(r.summary!);
          done++;
          return Promise.resolve();
        },
        losses: () => Promise.resolve(),
      },
      onExampleRead: (task) => reads.push({ during: done, task }),
    });
    const state = method.state();
    method.dispose();
    assertEquals(tf.memory().numTensors - before, 0);
    assert((await decoder.loraSites()[0].b.data()).some((v, i) => v !== lora0[i]), "trained");
    // 6, 7, 8 examples in batches of 4: 2 steps per task.
    assertEquals(summaries.map((x) => x.gemSteps), [2, 2, 2]);
    if (options.memoryGradient === "stored") {
      assertEquals(reads, []);
      assertEquals(state.json.storedTasks, 3);
      assert("gemProjectedTensors" in summaries[2]);
    } else {
      assertEquals((state.json.memory as number[][]).map((m) => m.length), [4, 4, 4]);
      assertEquals(reads.length, 2 * 1 + 2 * 2);
      assert(reads.every((r) => r.task < r.during));
    }
    decoder.dispose();
  }
});
