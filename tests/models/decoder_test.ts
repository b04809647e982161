import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import {
  applyRope,
  attentionBias,
  createDecoder,
  type Decoder,
  DECODER_PRESETS,
  type DecoderConfig,
  decoderParameterCount,
  decoderWeightShapes,
  disposeKvCache,
  embedTokens,
  gatedMlp,
  groupedQueryAttention,
  positionsFromMask,
  ropeTables,
} from "../../lib/models/decoder.ts";
import { rmsNorm } from "../../lib/models/layers.ts";
import type { TensorData } from "../../lib/models/safetensors.ts";
import { Rng } from "../../lib/random.ts";
import { lmLoss } from "../../lib/train/lm_loss.ts";
import { maxAbsDiff, setLoraB } from "../helpers.ts";

const MICRO: DecoderConfig = {
  ...DECODER_PRESETS["byte-micro"],
  lora: { rank: 2, alpha: 4, dropout: 0.1 },
};

function randomIds(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(256));
}

async function logitsOf(
  model: Decoder,
  ids: number[][],
  options: { mask?: number[][]; training?: boolean; seed?: number } = {},
): Promise<Float32Array> {
  const b = ids.length;
  const t = ids[0].length;
  const out = tf.tidy(() =>
    model.logits(tf.tensor2d(ids.flat(), [b, t], "int32"), {
      training: options.training ?? false,
      seed: options.seed,
      attentionMask: options.mask ? tf.tensor2d(options.mask.flat(), [b, t], "int32") : undefined,
    })
  );
  const values = (await out.data()) as Float32Array;
  out.dispose();
  return values;
}

Deno.test("rmsNorm: hand-computed example", async () => {
  await initBackend("cpu");
  // rms([3, 4]) = √12.5; weight [1, 2].
  const y = rmsNorm(tf.tensor2d([[3, 4]]), tf.tensor1d([1, 2]), { eps: 0 });
  const r = Math.sqrt(12.5);
  const v = await y.data();
  assertAlmostEquals(v[0], 3 / r, 1e-6);
  assertAlmostEquals(v[1], (2 * 4) / r, 1e-6);
  const e = rmsNorm(tf.tensor2d([[0, 0]]), tf.tensor1d([1, 1]), { eps: 1e-5 });
  assertEquals(Array.from(await e.data()), [0, 0]);
  tf.dispose([y, e]);
});

Deno.test("RoPE: hand-computed rotation, positions from a left-padded mask", async () => {
  await initBackend("cpu");
  const pos = positionsFromMask(tf.tensor2d([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]));
  assertEquals(Array.from(await pos.data()), [0, 0, 0, 1, 2, 0, 1, 2, 3, 4]);
  // headDim 4, θ 100: frequencies 1 and 100^(-1/2) = 0.1. x = [1, 2, 3, 4] at position 2.
  const tables = ropeTables(tf.tensor2d([[0, 2]]), { headDim: 4, theta: 100 });
  const x = tf.tensor4d([1, 2, 3, 4, 1, 2, 3, 4], [1, 2, 1, 4]);
  const y = await applyRope(x, tables).data();
  assertEquals(Array.from(y.subarray(0, 4)), [1, 2, 3, 4]); // position 0: identity
  const [c1, s1, c2, s2] = [Math.cos(2), Math.sin(2), Math.cos(0.2), Math.sin(0.2)];
  const expected = [1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2];
  expected.forEach((e, i) => assertAlmostEquals(y[4 + i], e, 1e-5));
  tf.dispose([pos, tables.cos, tables.sin, x]);
});

Deno.test("SwiGLU and GeGLU MLPs: hand-computed example", async () => {
  await initBackend("cpu");
  const lin = (w: number[][]) => ({ weight: tf.variable(tf.tensor2d(w)) });
  const p = {
    gate: lin([[1, 0], [0, 1], [1, 1]]),
    up: lin([[1, 1], [1, -1], [0, 1]]),
    down: lin([[1, 0, 1], [0, 1, 0]]),
  };
  const x = tf.tensor2d([[1, 2]]);
  const silu = (z: number) => z / (1 + Math.exp(-z));
  // gate = [1, 2, 3], up = [3, -1, 2]
  const y = await gatedMlp(x, p, { activation: "silu" }).data();
  assertAlmostEquals(y[0], silu(1) * 3 + silu(3) * 2, 1e-5);
  assertAlmostEquals(y[1], silu(2) * -1, 1e-5);
  const gelu = (z: number) =>
    0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));
  const g = await gatedMlp(x, p, { activation: "gelu_tanh" }).data();
  assertAlmostEquals(g[0], gelu(1) * 3 + gelu(3) * 2, 1e-5);
  assertAlmostEquals(g[1], gelu(2) * -1, 1e-5);
  tf.dispose([x, p.gate.weight, p.up.weight, p.down.weight]);
});

Deno.test("attentionBias: causal over real keys, with a cache offset", async () => {
  await initBackend("cpu");
  const b = await attentionBias(tf.tensor2d([[0, 1, 1]]), { queries: 3 }).data();
  const allowed = Array.from(b, (v) => (v === 0 ? 1 : 0));
  assertEquals(allowed, [0, 0, 0, 0, 1, 0, 0, 1, 1]);
  // One new query after two cached keys sees all three.
  const c = await attentionBias(tf.tensor2d([[1, 1, 1]]), { queries: 1 }).data();
  assertEquals(Array.from(c), [0, 0, 0]);
});

Deno.test("embedTokens: gather forward, one-hot gradient (wasm equals the matMul form)", async () => {
  await initBackend("wasm");
  const table = tf.variable(tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]));
  const ids = tf.tensor1d([2, 0, 2], "int32");
  const w = tf.tensor2d([[1, -1], [2, 0.5], [3, 1]]);
  assertEquals(Array.from(await embedTokens(ids, table).data()), [5, 6, 1, 2, 5, 6]);
  const g = tf.tidy(() =>
    tf.variableGrads(() => tf.sum(tf.mul(embedTokens(ids, table), w)) as tf.Scalar, [table])
      .grads[table.name]
  );
  assertEquals(Array.from(await g.data()), [2, 0.5, 0, 0, 4, 0, 0, 0]);
  tf.dispose([table, ids, w, g]);
});

Deno.test("grouped-query attention: shapes, and equal to MHA with repeated K/V heads", async () => {
  await initBackend("wasm");
  const gqa: DecoderConfig = { ...MICRO, heads: 4, kvHeads: 1, headDim: 8 };
  const shapes = decoderWeightShapes(gqa);
  assertEquals(shapes.get("model.layers.0.self_attn.q_proj.weight"), [32, 32]);
  assertEquals(shapes.get("model.layers.0.self_attn.k_proj.weight"), [8, 32]);
  assertEquals(shapes.get("model.layers.0.self_attn.v_proj.weight"), [8, 32]);
  assertEquals(shapes.get("model.layers.0.self_attn.o_proj.weight"), [32, 32]);
  const a = createDecoder(gqa, { rng: new Rng(3) });
  assertEquals(a.loraSites().map((s) => [s.name, s.a.shape, s.b.shape]), [
    ["layers.0.attn.q", [2, 32], [32, 2]],
    ["layers.0.attn.v", [2, 32], [8, 2]],
    ["layers.1.attn.q", [2, 32], [32, 2]],
    ["layers.1.attn.v", [2, 32], [8, 2]],
  ]);
  setLoraB(a.loraSites(), 4);
  // The same model written as MHA: every K/V projection (and v's LoRA B) repeated per head.
  const repeat = (w: TensorData): TensorData => {
    const out = new Float32Array(w.data.length * 4);
    for (let h = 0; h < 4; h++) out.set(w.data, h * w.data.length);
    return { shape: [w.shape[0] * 4, ...w.shape.slice(1)], data: out };
  };
  const weights = new Map<string, TensorData>();
  for (const [name, v] of a.baseWeights()) {
    const w = { shape: v.shape.slice(), data: (await v.data()) as Float32Array };
    weights.set(name, /(k|v)_proj/.test(name) ? repeat(w) : w);
  }
  const b = createDecoder({ ...gqa, kvHeads: 4 }, { rng: new Rng(3), weights });
  for (const [i, s] of b.loraSites().entries()) {
    const src = a.loraSites()[i];
    const data = (await src.b.data()) as Float32Array;
    const value = s.name.endsWith(".v") ? repeat({ shape: src.b.shape, data }).data : data;
    tf.tidy(() => s.b.assign(tf.tensor(value, s.b.shape)));
  }
  const ids = [randomIds(6, 1), randomIds(6, 2)];
  const mask = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]];
  const la = await logitsOf(a, ids, { mask });
  const lb = await logitsOf(b, ids, { mask });
  assertEquals(la.length, 2 * 6 * 259);
  assert(maxAbsDiff(la, lb) < 1e-4, `GQA vs MHA diff ${maxAbsDiff(la, lb)}`);
  // Direct call: 4 query heads over 2 KV heads.
  const y = tf.tidy(() =>
    groupedQueryAttention({
      q: tf.randomNormal([2, 3, 4, 8]) as tf.Tensor4D,
      kT: tf.randomNormal([2, 2, 8, 5]) as tf.Tensor4D,
      v: tf.randomNormal([2, 2, 5, 8]) as tf.Tensor4D,
    }, { bias: attentionBias(tf.ones([2, 5]), { queries: 3 }) })
  );
  assertEquals(y.shape, [6, 32]);
  y.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("causal: changing a later token leaves earlier logits unchanged", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(1) });
  setLoraB(model.loraSites(), 2);
  const ids = randomIds(10, 3);
  const changed = ids.slice();
  changed[6] = (changed[6] + 1) % 256;
  const a = await logitsOf(model, [ids]);
  const b = await logitsOf(model, [changed]);
  const v = 259;
  assertEquals(maxAbsDiff(a.subarray(0, 6 * v), b.subarray(0, 6 * v)), 0);
  assert(maxAbsDiff(a.subarray(6 * v), b.subarray(6 * v)) > 1e-4);
  model.dispose();
});

Deno.test("left padding: a sequence alone equals the same sequence left-padded in a batch", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(5) });
  setLoraB(model.loraSites(), 6);
  const short = randomIds(5, 7);
  const long = randomIds(9, 8);
  const alone = await logitsOf(model, [short]);
  const padded = [258, 258, 258, 258, ...short];
  const batch = await logitsOf(model, [padded, long], {
    mask: [[0, 0, 0, 0, 1, 1, 1, 1, 1], new Array(9).fill(1)],
  });
  const v = 259;
  const d = maxAbsDiff(alone, batch.subarray(4 * v, 9 * v));
  assert(d < 1e-4, `padding changed the logits by ${d}`);
  // The pad tokens' identity does not matter either.
  const other = await logitsOf(model, [[7, 9, 11, 13, ...short], long], {
    mask: [[0, 0, 0, 0, 1, 1, 1, 1, 1], new Array(9).fill(1)],
  });
  assert(maxAbsDiff(other.subarray(4 * v, 9 * v), alone) < 1e-4);
  // The long row is unaffected by the padded row.
  const longAlone = await logitsOf(model, [long]);
  assert(maxAbsDiff(longAlone, batch.subarray(9 * v)) < 1e-4);
  model.dispose();
});

Deno.test("extend with a KV cache equals the full forward (left-padded batch)", async () => {
  await initBackend("wasm");
  const model = createDecoder({ ...MICRO, kvHeads: 1 }, { rng: new Rng(9) });
  setLoraB(model.loraSites(), 10);
  const ids = [[258, 258, ...randomIds(4, 11)], randomIds(6, 12)];
  const mask = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]];
  const more = [randomIds(3, 13), randomIds(3, 14)];
  const full = await logitsOf(
    model,
    ids.map((r, i) => [...r, ...more[i]]),
    { mask: mask.map((m) => [...m, 1, 1, 1]) },
  );
  const before = tf.memory().numTensors;
  let { logits, cache } = model.extend(tf.tensor2d(ids.flat(), [2, 6], "int32"), {
    attentionMask: tf.tensor2d(mask.flat(), [2, 6], "int32"),
  });
  const v = 259;
  const t = 9;
  const at = (b: number, pos: number) => full.subarray((b * t + pos) * v, (b * t + pos + 1) * v);
  for (let s = 0; s <= 3; s++) {
    const got = (await logits.data()) as Float32Array;
    for (let b = 0; b < 2; b++) {
      const d = maxAbsDiff(got.subarray(b * v, (b + 1) * v), at(b, 5 + s));
      assert(d < 1e-4, `step ${s} row ${b}: diff ${d}`);
    }
    logits.dispose();
    if (s === 3) break;
    const step = tf.tensor2d([more[0][s], more[1][s]], [2, 1], "int32");
    ({ logits, cache } = model.extend(step, { cache }));
    step.dispose();
  }
  disposeKvCache(cache);
  // 2 input tensors of the first call (ids, mask) are the test's own.
  assertEquals(tf.memory().numTensors, before + 2);
  model.dispose();
});

Deno.test("forward and LoRA gradients on wasm equal cpu (byte-micro)", async () => {
  const ids = [randomIds(8, 20), [258, 258, 258, ...randomIds(5, 21)]];
  const mask = [new Array(8).fill(1), [0, 0, 0, 1, 1, 1, 1, 1]];
  const labels = Int32Array.from(ids.flat(), (v, i) => (i % 8 >= 4 ? v : -100));
  const results: { fwd: Float32Array[]; grads: Float32Array[] }[] = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const model = createDecoder(MICRO, { rng: new Rng(7) });
    setLoraB(model.loraSites(), 8);
    const fwd = [
      await logitsOf(model, ids, { mask }),
      await logitsOf(model, ids, { mask, training: true, seed: 99 }),
    ];
    const vars = model.loraSites().flatMap((s) => [s.a, s.b]);
    const g = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        const logits = model.logits(tf.tensor2d(ids.flat(), [2, 8], "int32"), {
          training: true,
          seed: 3,
          attentionMask: tf.tensor2d(mask.flat(), [2, 8], "int32"),
        });
        return lmLoss(logits, labels);
      }, vars);
      return vars.map((v) => grads[v.name]);
    });
    const grads = await Promise.all(g.map(async (t) => (await t.data()) as Float32Array));
    tf.dispose(g);
    results.push({ fwd, grads });
    model.dispose();
  }
  const [cpu, wasm] = results;
  for (let i = 0; i < 2; i++) {
    const d = maxAbsDiff(cpu.fwd[i], wasm.fwd[i]);
    assert(d < 1e-4, `forward ${i}: diff ${d}`);
  }
  assert(maxAbsDiff(cpu.fwd[0], cpu.fwd[1]) > 1e-5, "dropout changes the training forward");
  for (let i = 0; i < cpu.grads.length; i++) {
    const scale = Math.max(...cpu.grads[i].map(Math.abs));
    assert(scale > 1e-6, `gradient ${i} is zero`);
    const d = maxAbsDiff(cpu.grads[i], wasm.grads[i]);
    assert(d <= 1e-3 * scale + 1e-6, `gradient ${i}: max diff ${d} (scale ${scale})`);
  }
});

Deno.test("LoRA training: tensor count constant across 3 Adam steps, base frozen (wasm)", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(1) });
  const vars = model.loraSites().flatMap((s) => [s.a, s.b]);
  const base0 = await Promise.all([...model.baseWeights().values()].map((v) => v.data()));
  const start = tf.memory().numTensors;
  const opt = tf.train.adam(1e-2, 0.9, 0.95);
  const ids = [randomIds(8, 1), randomIds(8, 2)];
  const labels = Int32Array.from(ids.flat());
  const counts: number[] = [];
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () =>
          lmLoss(
            model.logits(tf.tensor2d(ids.flat(), [2, 8], "int32"), { training: true, seed: step }),
            labels,
          ),
        vars,
      );
      opt.applyGradients(Object.keys(grads).map((name) => ({ name, tensor: grads[name] })));
      return value;
    });
    losses.push((await loss.data())[0]);
    loss.dispose();
    counts.push(tf.memory().numTensors);
  }
  assertEquals(counts[1], counts[0]);
  assertEquals(counts[2], counts[0]);
  assert(losses[2] < losses[0], `loss did not decrease: ${losses}`);
  const base1 = await Promise.all([...model.baseWeights().values()].map((v) => v.data()));
  base1.forEach((b, i) => assertEquals(b, base0[i]));
  opt.dispose();
  assertEquals(tf.memory().numTensors, start);
  model.dispose();
});

Deno.test("full training reaches the embedding and the untied head (wasm)", async () => {
  await initBackend("wasm");
  const model = createDecoder({ ...MICRO, lora: { ...MICRO.lora, dropout: 0 } }, {
    rng: new Rng(2),
  });
  model.setBaseTrainable(true);
  const vars = [...model.baseWeights().values()];
  const ids = [randomIds(8, 3)];
  const g = tf.tidy(() => {
    const { grads } = tf.variableGrads(
      () =>
        lmLoss(
          model.logits(tf.tensor2d(ids.flat(), [1, 8], "int32"), { training: true }),
          Int32Array.from(ids.flat()),
        ),
      vars,
    );
    return vars.map((v) => grads[v.name]);
  });
  const norms = await Promise.all(g.map(async (t) => (await t.data()).some((x) => x !== 0)));
  assert(norms.every((n) => n), "every base weight gets a gradient");
  // Embedding rows of tokens absent from the input get none.
  const emb = (await g[0].data()) as Float32Array;
  const unused = [...Array(259).keys()].find((v) => !ids[0].includes(v))!;
  assert(emb.subarray(unused * 32, (unused + 1) * 32).every((x) => x === 0));
  tf.dispose(g);
  model.dispose();
});

Deno.test("sites, Hugging Face names and the real presets' shapes and sizes", async () => {
  await initBackend("wasm");
  const tiny = createDecoder(DECODER_PRESETS["byte-tiny"], { rng: new Rng(0) });
  assertEquals(tiny.loraSites().length, 8);
  assertEquals(
    tiny.loraSites().map((s) => s.name).slice(0, 3),
    ["layers.0.attn.q", "layers.0.attn.v", "layers.1.attn.q"],
  );
  assert(tiny.loraSites().every((s) => s.a.size === 8 * 128), "every A has the same size");
  const names = [...tiny.baseWeights().keys()];
  assertEquals(names.slice(0, 4), [
    "model.embed_tokens.weight",
    "model.layers.0.input_layernorm.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.0.self_attn.k_proj.weight",
  ]);
  assertEquals(names.slice(-2), ["model.norm.weight", "lm_head.weight"]);
  assert([...tiny.baseWeights().values()].every((v) => !v.trainable));
  assertEquals(tiny.parameterCount(), decoderParameterCount(DECODER_PRESETS["byte-tiny"]));
  tiny.dispose();
  // Known parameter counts of the real models (base, no LoRA).
  assertEquals(decoderParameterCount(DECODER_PRESETS["llama-3.2-1b"]).base, 1_235_814_400);
  assertEquals(decoderParameterCount(DECODER_PRESETS["llama-2-7b"]).base, 6_738_415_616);
  assertEquals(decoderParameterCount(DECODER_PRESETS["mistral-7b"]).base, 7_248_023_552);
  const gemma = decoderWeightShapes(DECODER_PRESETS["gemma-2b"]);
  assertEquals(gemma.get("model.layers.17.self_attn.k_proj.weight"), [256, 2048]);
  assertEquals(gemma.get("model.layers.0.mlp.gate_proj.weight"), [16384, 2048]);
  assertEquals(gemma.has("lm_head.weight"), false);
  const llama = decoderWeightShapes(DECODER_PRESETS["llama-3.2-1b"]);
  assertEquals(llama.get("model.embed_tokens.weight"), [128256, 2048]);
  assertEquals(llama.get("model.layers.15.self_attn.v_proj.weight"), [512, 2048]);
  assertThrows(() => decoderWeightShapes({ ...MICRO, kvHeads: 3 }), Error, "kvHeads");
  assertThrows(() => decoderWeightShapes({ ...MICRO, headDim: 15 }), Error, "even");
});

Deno.test("createDecoder from weights reproduces a model; mismatched weights are refused", async () => {
  await initBackend("wasm");
  const tied: DecoderConfig = { ...MICRO, tieEmbeddings: true };
  const a = createDecoder(tied, { rng: new Rng(1) });
  const weights = new Map<string, TensorData>();
  for (const [name, v] of a.baseWeights()) {
    weights.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
  }
  const b = createDecoder(tied, { rng: new Rng(1), weights });
  const ids = [randomIds(5, 4)];
  assertEquals(await logitsOf(a, ids), await logitsOf(b, ids));
  weights.delete("model.norm.weight");
  assertThrows(() => createDecoder(tied, { rng: new Rng(1), weights }), Error, "model.norm.weight");
  const before = tf.memory().numTensors;
  assertThrows(() => createDecoder(MICRO, { rng: new Rng(1), weights }), Error, "lm_head.weight");
  assertEquals(tf.memory().numTensors, before);
  a.dispose();
  b.dispose();
});

// ---------------------------------------------------------------------------
// Input-embedding prefix (prompt tuning) and frozen features

/** Rows `ids` of the model's token embedding, [ids.length, dim] (a prefix equal to those tokens). */
function tableRows(model: Decoder, ids: number[]): tf.Tensor2D {
  const table = model.baseWeights().get("model.embed_tokens.weight")!;
  return tf.tidy(() => tf.gather(table, tf.tensor1d(ids, "int32")) as tf.Tensor2D);
}

async function prefixLogits(
  model: Decoder,
  ids: number[][],
  options: {
    mask: number[][];
    prefix?: tf.Tensor;
    training?: boolean;
    seed?: number;
    lastOnly?: boolean;
  },
): Promise<Float32Array> {
  const b = ids.length;
  const t = ids[0].length;
  const out = tf.tidy(() =>
    model.logits(tf.tensor2d(ids.flat(), [b, t], "int32"), {
      training: options.training ?? false,
      seed: options.seed,
      attentionMask: tf.tensor2d(options.mask.flat(), [b, t], "int32"),
      prefix: options.prefix,
      lastOnly: options.lastOnly,
    })
  );
  const values = (await out.data()) as Float32Array;
  out.dispose();
  return values;
}

Deno.test("prefix: empty = no prefix bit-for-bit; a prefix of embedding rows = those tokens fed as ids", async () => {
  await initBackend("cpu");
  const v = 259;
  for (const embeddingScale of [1, 1.5]) {
    const model = createDecoder({ ...MICRO, embeddingScale }, { rng: new Rng(31) });
    setLoraB(model.loraSites(), 32);
    const ids = [[258, 258, 256, ...randomIds(3, 33)], [256, ...randomIds(5, 34)]];
    const mask = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]];
    const plain = await prefixLogits(model, ids, { mask });
    const empty = tf.zeros([0, 32]);
    assertEquals(await prefixLogits(model, ids, { mask, prefix: empty }), plain);
    empty.dispose();
    // Per-row prefixes [B, P, d] and one shared prefix [P, d], for eval and training mode.
    const pre = [[44, 17, 42], [99, 7, 250]];
    const perRow = tf.tidy(() => tf.stack([tableRows(model, pre[0]), tableRows(model, pre[1])]));
    const shared = tableRows(model, pre[0]);
    for (const [prefix, rows] of [[perRow, pre], [shared, [pre[0], pre[0]]]] as const) {
      for (const mode of [{ training: false }, { training: true, seed: 35 }]) {
        const got = await prefixLogits(model, ids, { mask, prefix, ...mode });
        assertEquals(got.length, 2 * 6 * v, "logits for the token positions only");
        const ref = await prefixLogits(model, ids.map((r, i) => [...rows[i], ...r]), {
          mask: mask.map((m) => [1, 1, 1, ...m]),
          ...mode,
        });
        for (let b = 0; b < 2; b++) {
          const d = maxAbsDiff(
            got.subarray(b * 6 * v, (b + 1) * 6 * v),
            ref.subarray((b * 9 + 3) * v, (b + 1) * 9 * v),
          );
          assert(d < 1e-6, `scale ${embeddingScale}, row ${b}, ${JSON.stringify(mode)}: ${d}`);
        }
      }
      const last = await prefixLogits(model, ids, { mask, prefix, lastOnly: true });
      const full = await prefixLogits(model, ids, { mask, prefix });
      const tail = Float32Array.from([...full.subarray(5 * v, 6 * v), ...full.subarray(11 * v)]);
      assert(maxAbsDiff(last, tail) < 1e-6, "lastOnly = the last token's logits");
    }
    // The prefix is differentiable: its gradient is the embedding rows' gradient of the
    // explicit-token forward (the prefix tokens occur nowhere else in the rows).
    const labels = Int32Array.from(ids.flat(), (t, i) => (i % 6 >= 3 ? t : -100));
    const pv = tf.variable(perRow, true);
    const gPrefix = tf.tidy(() => {
      const { grads } = tf.variableGrads(() =>
        lmLoss(
          model.logits(tf.tensor2d(ids.flat(), [2, 6], "int32"), {
            training: false,
            attentionMask: tf.tensor2d(mask.flat(), [2, 6], "int32"),
            prefix: pv,
          }),
          labels,
        ), [pv]);
      return grads[pv.name];
    });
    const table = model.baseWeights().get("model.embed_tokens.weight")!;
    model.setBaseTrainable(true);
    const gTable = tf.tidy(() => {
      const longLabels = Int32Array.from(
        ids.flatMap((r) => [-100, -100, -100, ...r.map((t, j) => (j >= 3 ? t : -100))]),
      );
      const { grads } = tf.variableGrads(() =>
        lmLoss(
          model.logits(tf.tensor2d(ids.flatMap((r, i) => [...pre[i], ...r]), [2, 9], "int32"), {
            training: false,
            attentionMask: tf.tensor2d(mask.flatMap((m) => [1, 1, 1, ...m]), [2, 9], "int32"),
          }),
          longLabels,
        ), [table]);
      return tf.gather(grads[table.name], tf.tensor1d(pre.flat(), "int32"));
    });
    model.setBaseTrainable(false);
    const d = maxAbsDiff(await gPrefix.data(), await gTable.data());
    const scale = Math.max(...Array.from(await gTable.data(), Math.abs));
    assert(
      scale > 0 && d < 1e-6 + 1e-4 * scale,
      `prefix gradient differs by ${d} (scale ${scale})`,
    );
    tf.dispose([perRow, shared, pv, gPrefix, gTable]);
    model.dispose();
  }
});

Deno.test("prefix: extend starts the cache with it and equals the full forward; misuse is refused", async () => {
  await initBackend("wasm");
  const model = createDecoder({ ...MICRO, kvHeads: 1 }, { rng: new Rng(41) });
  setLoraB(model.loraSites(), 42);
  const rng = new Rng(43);
  const prefix = tf.tensor3d(
    Float32Array.from({ length: 2 * 4 * 32 }, () => 0.05 * rng.normal()),
    [2, 4, 32],
  );
  const ids = [[258, 258, ...randomIds(4, 44)], randomIds(6, 45)];
  const mask = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]];
  const more = [randomIds(3, 46), randomIds(3, 47)];
  const full = await prefixLogits(model, ids.map((r, i) => [...r, ...more[i]]), {
    mask: mask.map((m) => [...m, 1, 1, 1]),
    prefix,
  });
  const before = tf.memory().numTensors;
  const first = tf.tensor2d(ids.flat(), [2, 6], "int32");
  const firstMask = tf.tensor2d(mask.flat(), [2, 6], "int32");
  let { logits, cache } = model.extend(first, { attentionMask: firstMask, prefix });
  tf.dispose([first, firstMask]);
  assertEquals(cache.mask.shape, [2, 10], "the cache holds the 4 prefix positions");
  const v = 259;
  const at = (b: number, pos: number) => full.subarray((b * 9 + pos) * v, (b * 9 + pos + 1) * v);
  for (let s = 0; s <= 3; s++) {
    const got = (await logits.data()) as Float32Array;
    for (let b = 0; b < 2; b++) {
      const d = maxAbsDiff(got.subarray(b * v, (b + 1) * v), at(b, 5 + s));
      assert(d < 1e-4, `step ${s} row ${b}: diff ${d}`);
    }
    logits.dispose();
    if (s === 3) break;
    const step = tf.tensor2d([more[0][s], more[1][s]], [2, 1], "int32");
    if (s === 0) {
      assertThrows(() => model.extend(step, { cache, prefix }), Error, "cannot follow");
    }
    ({ logits, cache } = model.extend(step, { cache }));
    step.dispose();
  }
  disposeKvCache(cache);
  assertEquals(tf.memory().numTensors, before, "no tensor leaks");
  const ids2 = tf.tensor2d(ids.flat(), [2, 6], "int32");
  for (const bad of [tf.zeros([4, 31]), tf.zeros([3, 4, 32]), tf.zeros([4, 32], "int32")]) {
    assertThrows(
      () => model.logits(ids2, { training: false, prefix: bad }),
      Error,
      "prefix must be",
    );
    bad.dispose();
  }
  tf.dispose([ids2, prefix]);
  model.dispose();
});

Deno.test("features: the frozen model's mean final hidden state (LoRA bypassed, masks, causal)", async () => {
  await initBackend("cpu");
  const model = createDecoder(MICRO, { rng: new Rng(51) });
  const prompt = [256, ...randomIds(4, 52)];
  const answer = randomIds(3, 53);
  const run = (ids: number[][], mask: number[][], pool?: number[][]) =>
    tf.tidy(() => {
      const shape: [number, number] = [ids.length, ids[0].length];
      return model.features(tf.tensor2d(ids.flat(), shape, "int32"), {
        attentionMask: tf.tensor2d(mask.flat(), shape, "int32"),
        poolMask: pool ? tf.tensor2d(pool.flat(), shape) : undefined,
      });
    });
  // With LoRA B = 0 the logits are linear in the final hidden state: mean(logits) = f · Wₗₘᵀ.
  const f = run([prompt], [[1, 1, 1, 1, 1]]);
  assertEquals(f.shape, [1, 32]);
  const head = model.baseWeights().get("lm_head.weight")!;
  const viaHead = await tf.tidy(() => tf.matMul(f, tf.transpose(head))).data();
  const logits = await logitsOf(model, [prompt]);
  const mean = new Float32Array(259);
  for (let p = 0; p < 5; p++) for (let j = 0; j < 259; j++) mean[j] += logits[p * 259 + j] / 5;
  assert(
    maxAbsDiff(viaHead, mean) < 1e-5,
    `features · Wᵀ vs mean logits: ${maxAbsDiff(viaHead, mean)}`,
  );
  const fv = await f.data();
  // LoRA is bypassed: the features ignore B while the logits move.
  setLoraB(model.loraSites(), 54);
  assertEquals(await run([prompt], [[1, 1, 1, 1, 1]]).data(), fv);
  assert(maxAbsDiff(await logitsOf(model, [prompt]), logits) > 1e-3);
  // Pooled over the prompt positions of prompt + answer (left-padded, in a batch) = the prompt alone.
  const row = [258, 258, ...prompt, ...answer];
  const rowMask = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
  const promptPool = [0, 0, 1, 1, 1, 1, 1, 0, 0, 0];
  const other = randomIds(10, 55);
  const batch = await run([row, other], [rowMask, new Array(10).fill(1)], [
    promptPool,
    new Array(10).fill(0),
  ]).data();
  assert(maxAbsDiff(batch.subarray(0, 32), fv) < 1e-5, "prompt part of a training row");
  assertEquals(Array.from(batch.subarray(32)), new Array(32).fill(0), "no pooled positions → 0");
  f.dispose();
  model.dispose();
});
