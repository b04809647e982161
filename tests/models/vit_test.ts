import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { loadWeights, saveWeights, type TensorData } from "../../lib/models/safetensors.ts";
import {
  applyWeights,
  createVit,
  patchEmbed,
  VIT_PRESETS,
  type VitConfig,
} from "../../lib/models/vit.ts";
import { Rng } from "../../lib/random.ts";
import { maxAbsDiff, setLoraB } from "../helpers.ts";

const MICRO: VitConfig = { ...VIT_PRESETS.micro, lora: { rank: 2, alpha: 4, dropout: 0.1 } };

function images(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * 32 * 32 * 3 }, () => rng.next());
}

async function snapshot(
  vit: { baseWeights(): Map<string, tf.Variable> },
): Promise<Map<string, TensorData>> {
  const out = new Map<string, TensorData>();
  for (const [name, v] of vit.baseWeights()) {
    out.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
  }
  return out;
}

Deno.test("patchEmbed equals a naive per-patch loop over the conv-layout weight", async () => {
  await initBackend("cpu");
  const rng = new Rng(5);
  const [b, h, w, c, p, dim] = [2, 8, 8, 3, 4, 5];
  const x = Float32Array.from({ length: b * h * w * c }, () => rng.normal());
  const wt = Float32Array.from({ length: dim * c * p * p }, () => rng.normal());
  const bias = Float32Array.from({ length: dim }, () => rng.normal());
  const y = tf.tidy(() =>
    patchEmbed(tf.tensor4d(x, [b, h, w, c]), {
      weight: tf.tensor4d(wt, [dim, c, p, p]),
      bias: tf.tensor1d(bias),
      patchSize: p,
    })
  );
  assertEquals(y.shape, [b * (h / p) * (w / p), dim]);
  const got = await y.data();
  y.dispose();
  const gw = w / p;
  const ref: number[] = [];
  for (let n = 0; n < b; n++) {
    for (let gy = 0; gy < h / p; gy++) {
      for (let gx = 0; gx < gw; gx++) {
        for (let d = 0; d < dim; d++) {
          let s = bias[d];
          for (let ch = 0; ch < c; ch++) {
            for (let i = 0; i < p; i++) {
              for (let j = 0; j < p; j++) {
                const xv = x[((n * h + gy * p + i) * w + gx * p + j) * c + ch];
                s += xv * wt[((d * c + ch) * p + i) * p + j];
              }
            }
          }
          ref.push(s);
        }
      }
    }
  }
  assert(maxAbsDiff(got, ref) < 1e-4, `max diff ${maxAbsDiff(got, ref)}`);
});

Deno.test("ViT: names, shapes, LoRA site order, trainability, coexistence, dispose", async () => {
  await initBackend("cpu");
  const before = tf.memory().numTensors;
  const vit = createVit({ ...MICRO, loraBlocks: [1, 0] }, { rng: new Rng(0) });
  const other = createVit({ ...MICRO, loraBlocks: [1] }, { rng: new Rng(0) });
  const names = [...vit.baseWeights().keys()];
  assertEquals(names.slice(0, 6), [
    "patch_embed.weight",
    "patch_embed.bias",
    "cls_token",
    "pos_embed",
    "blocks.0.norm1.weight",
    "blocks.0.norm1.bias",
  ]);
  assertEquals(names.slice(-2), ["norm.weight", "norm.bias"]);
  assertEquals(names.length, 4 + 2 * 16 + 2);
  const shapes = Object.fromEntries([...vit.baseWeights()].map(([n, v]) => [n, v.shape]));
  assertEquals(shapes["patch_embed.weight"], [32, 3, 8, 8]);
  assertEquals(shapes["pos_embed"], [1, 17, 32]);
  assertEquals(shapes["blocks.1.attn.q.weight"], [32, 32]);
  assertEquals(shapes["blocks.1.mlp.fc1.weight"], [128, 32]);
  assertEquals(shapes["blocks.1.mlp.fc2.weight"], [32, 128]);
  assertEquals(vit.numTokens, 17);
  assertEquals(vit.loraSites().map((s) => s.name), [
    "blocks.0.attn.q",
    "blocks.0.attn.v",
    "blocks.1.attn.q",
    "blocks.1.attn.v",
  ]);
  assertEquals(other.loraSites().map((s) => s.name), ["blocks.1.attn.q", "blocks.1.attn.v"]);
  // A config without loraBlocks (e.g. from JSON) adapts every block.
  const all = createVit({ ...MICRO, loraBlocks: undefined as unknown as number[] }, {
    rng: new Rng(0),
  });
  assertEquals(all.loraSites().length, 4);
  all.dispose();
  assertEquals(vit.loraSites()[0].a.shape, [2, 32]);
  // patch embed + cls + pos, 2 × (2 norms + 4 attention maps + fc1 + fc2), final norm.
  const block = 2 * 64 + 4 * (32 * 32 + 32) + (128 * 32 + 128) + (32 * 128 + 32);
  const base = 32 * 192 + 32 + 32 + 17 * 32 + 2 * block + 64;
  assertEquals(vit.parameterCount(), { base, lora: 4 * (2 * 32 + 32 * 2) });
  // Base starts frozen; pre-training unfreezes it.
  assert([...vit.baseWeights().values()].every((v) => !v.trainable));
  vit.setBaseTrainable(true);
  assert([...vit.baseWeights().values()].every((v) => v.trainable));
  vit.setBaseTrainable(false);
  // Same seed → same base weights, even with a different LoRA layout.
  const wa = await vit.baseWeights().get("blocks.1.attn.q.weight")!.data();
  const wb = await other.baseWeights().get("blocks.1.attn.q.weight")!.data();
  assertEquals(Array.from(wa), Array.from(wb));
  vit.dispose();
  other.dispose();
  assertEquals(tf.memory().numTensors, before);
  assertThrows(
    () => createVit({ ...MICRO, loraBlocks: [2] }, { rng: new Rng(0) }),
    Error,
    "loraBlocks",
  );
  assertThrows(() => createVit({ ...MICRO, heads: 3 }, { rng: new Rng(0) }), Error, "divisible");
});

Deno.test("ViT: each image's features are independent of the rest of the batch", async () => {
  await initBackend("cpu");
  const vit = createVit(MICRO, { rng: new Rng(1) });
  setLoraB(vit.loraSites(), 2);
  const x = images(3, 3);
  const both = tf.tidy(() => vit.features(tf.tensor4d(x, [3, 32, 32, 3]), { training: false }));
  const one = tf.tidy(() =>
    vit.features(tf.tensor4d(x.subarray(2 * 3072), [1, 32, 32, 3]), { training: false })
  );
  const all = await both.data();
  assertEquals(both.shape, [3, 32]);
  assert(maxAbsDiff(all.subarray(64), await one.data()) < 1e-5);
  assert(maxAbsDiff(all.subarray(0, 32), all.subarray(32, 64)) > 1e-3);
  tf.dispose([both, one]);
  vit.dispose();
});

Deno.test("ViT forward on wasm equals cpu within 1e-4 (micro, same seed)", async () => {
  const x = images(2, 4);
  const results: Float32Array[] = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const vit = createVit(MICRO, { rng: new Rng(7) });
    setLoraB(vit.loraSites(), 8);
    for (const training of [false, true]) {
      const f = tf.tidy(() => vit.features(tf.tensor4d(x, [2, 32, 32, 3]), { training, seed: 99 }));
      results.push((await f.data()) as Float32Array);
      f.dispose();
    }
    vit.dispose();
  }
  const [cpuEval, cpuTrain, wasmEval, wasmTrain] = results;
  assert(maxAbsDiff(cpuEval, wasmEval) < 1e-4, `eval diff ${maxAbsDiff(cpuEval, wasmEval)}`);
  assert(maxAbsDiff(cpuTrain, wasmTrain) < 1e-4, `train diff ${maxAbsDiff(cpuTrain, wasmTrain)}`);
  // Dropout (p = 0.1 on the LoRA input) changes the training features.
  assert(maxAbsDiff(cpuEval, cpuTrain) > 1e-4);
});

Deno.test("ViT gradient w.r.t. LoRA A and B: wasm equals cpu", async () => {
  const x = images(2, 5);
  const rng = new Rng(6);
  const probe = Float32Array.from({ length: 2 * 32 }, () => rng.normal());
  const grads: Float32Array[][] = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const vit = createVit(MICRO, { rng: new Rng(7) });
    setLoraB(vit.loraSites(), 8);
    const vars = vit.loraSites().flatMap((s) => [s.a, s.b]);
    const g = tf.tidy(() => {
      const { grads } = tf.variableGrads(
        () =>
          tf.sum(
            tf.mul(
              vit.features(tf.tensor4d(x, [2, 32, 32, 3]), { training: true, seed: 3 }),
              tf.tensor2d(probe, [2, 32]),
            ),
          ),
        vars,
      );
      return vars.map((v) => grads[v.name]);
    });
    grads.push(await Promise.all(g.map(async (t) => (await t.data()) as Float32Array)));
    tf.dispose(g);
    vit.dispose();
  }
  for (let i = 0; i < grads[0].length; i++) {
    const scale = Math.max(...grads[0][i].map(Math.abs));
    assert(scale > 1e-4, `gradient ${i} is zero`);
    const d = maxAbsDiff(grads[0][i], grads[1][i]);
    assert(d <= 1e-3 * scale + 1e-6, `gradient ${i}: max diff ${d} (scale ${scale})`);
  }
});

Deno.test("ViT training: tensor count constant across 3 Adam steps (wasm, micro)", async () => {
  await initBackend("wasm");
  const vit = createVit(MICRO, { rng: new Rng(1) });
  const headW = tf.variable(tf.zeros([32, 10]));
  const vars = [...vit.loraSites().flatMap((s) => [s.a, s.b]), headW];
  const opt = tf.train.adam(1e-2);
  const x = tf.tensor4d(images(4, 9), [4, 32, 32, 3]);
  const y = tf.oneHot(tf.tensor1d([1, 2, 3, 4], "int32"), 10);
  const counts: number[] = [];
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () =>
          tf.losses.softmaxCrossEntropy(
            y,
            tf.matMul(vit.features(x, { training: true, seed: step }), headW),
          ) as tf.Scalar,
        vars,
      );
      opt.applyGradients(Object.keys(grads).map((name) => ({ name, tensor: grads[name] })));
      return value;
    });
    losses.push((await loss.data())[0]);
    loss.dispose();
    counts.push(tf.memory().numTensors);
  }
  // Adam creates its slot variables in step 1; after that nothing may accumulate.
  assertEquals(counts[1], counts[0]);
  assertEquals(counts[2], counts[0]);
  assert(losses[2] < losses[0], `loss did not decrease: ${losses}`);
  // LoRA B moved away from zero; the frozen base did not move.
  assert((await vit.loraSites()[0].b.data()).some((v) => v !== 0));
  opt.dispose();
  tf.dispose([x, y, headW]);
  vit.dispose();
});

Deno.test("createVit from weights and applyWeights reproduce a model; LoRA init independent of the base", async () => {
  await initBackend("cpu");
  const src = createVit(MICRO, { rng: new Rng(1) });
  const weights = await snapshot(src);
  const fromWeights = createVit(MICRO, { rng: new Rng(1), weights });
  const random = createVit(MICRO, { rng: new Rng(2) });
  const x = tf.tensor4d(images(2, 1), [2, 32, 32, 3]);
  const feats = async (v: typeof src) => {
    const f = v.features(x, { training: false });
    const d = await f.data();
    f.dispose();
    return d;
  };
  const ref = await feats(src);
  assertEquals(Array.from(await feats(fromWeights)), Array.from(ref));
  // Same rng seed → same LoRA A whether the base was drawn or loaded.
  assertEquals(
    Array.from(await fromWeights.loraSites()[3].a.data()),
    Array.from(await src.loraSites()[3].a.data()),
  );
  assert(maxAbsDiff(await feats(random), ref) > 1e-3);
  const report = applyWeights(random, weights);
  assertEquals(report.loaded.length, weights.size);
  assertEquals(Array.from(await feats(random)), Array.from(ref));

  // Strictness and shape checks, naming the tensor; nothing is assigned on failure.
  const partial = new Map(weights);
  partial.delete("norm.bias");
  assertThrows(() => applyWeights(random, partial), Error, "missing: norm.bias");
  const r = applyWeights(
    random,
    new Map([...partial, ["head.weight", { shape: [1], data: new Float32Array(1) }]]),
    {
      strict: false,
    },
  );
  assertEquals(r.missing, ["norm.bias"]);
  assertEquals(r.unexpected, ["head.weight"]);
  const bad = new Map(weights);
  bad.set("pos_embed", { shape: [1, 65, 32], data: new Float32Array(65 * 32) });
  assertThrows(
    () => applyWeights(random, bad),
    Error,
    `weight "pos_embed": expected shape [1,17,32], got [1,65,32]`,
  );
  assertThrows(
    () => createVit(MICRO, { rng: new Rng(1), weights: partial }),
    Error,
    "missing: norm.bias",
  );
  x.dispose();
  [src, fromWeights, random].forEach((v) => v.dispose());
});

Deno.test("ViT base weights survive a safetensors file round trip", async () => {
  await initBackend("cpu");
  const dir = await Deno.makeTempDir({ prefix: "treelora-vit-" });
  try {
    const src = createVit(MICRO, { rng: new Rng(4) });
    await saveWeights(`${dir}/base.safetensors`, src.baseWeights(), {
      metadata: { preset: "micro" },
    });
    const { tensors, metadata } = await loadWeights(`${dir}/base.safetensors`);
    assertEquals(metadata.preset, "micro");
    assertEquals([...tensors.keys()], [...src.baseWeights().keys()]);
    const copy = createVit(MICRO, { rng: new Rng(4), weights: tensors });
    const x = tf.tensor4d(images(1, 2), [1, 32, 32, 3]);
    const [a, b] = [src, copy].map((v) => v.features(x, { training: false }));
    assertEquals(Array.from(await a.data()), Array.from(await b.data()));
    tf.dispose([x, a, b]);
    src.dispose();
    copy.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Prompts (prompt-tuning tokens and prefix-tuning), checked against a plain-JS reference.

/** LayerNorm of each row of x [rows, d] in float64. */
function refLayerNorm(x: Float64Array, d: number, w: TensorData, b: TensorData, eps: number) {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mean) * inv * w.data[i] + b.data[i];
  }
  return y;
}

/** y = x·Wᵀ + b on rows. */
function refDense(x: Float64Array, w: TensorData, b: TensorData) {
  const [out, inp] = w.shape;
  const rows = x.length / inp;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = b.data[o];
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[o * inp + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

/**
 * The features of one image [S, S, C] of a `vit.ts` model (tanh GELU, no LoRA) with
 * prompt tokens [P, d] inserted after cls (no position embedding) and key/value prefixes
 * [Pb, d] per block, pooled as cls or the mean of the prompt outputs.
 */
function referenceFeatures(
  w: Map<string, TensorData>,
  c: VitConfig,
  image: Float32Array,
  prompts: { tokens?: number[][]; prefixes?: Map<number, { key: number[][]; value: number[][] }> },
  pool: "cls" | "prompts",
): Float64Array {
  const d = c.dim;
  const p = c.patchSize;
  const g = c.imageSize / p;
  const pe = w.get("patch_embed.weight")!.data;
  const pos = w.get("pos_embed")!.data;
  const rows: number[][] = [[...w.get("cls_token")!.data].map((v, i) => v + pos[i])];
  for (let gy = 0; gy < g; gy++) {
    for (let gx = 0; gx < g; gx++) {
      const t = gy * g + gx + 1;
      rows.push(Array.from({ length: d }, (_, o) => {
        let s = w.get("patch_embed.bias")!.data[o] + pos[t * d + o];
        for (let ch = 0; ch < c.channels; ch++) {
          for (let i = 0; i < p; i++) {
            for (let j = 0; j < p; j++) {
              const px = image[((gy * p + i) * c.imageSize + gx * p + j) * c.channels + ch];
              s += pe[((o * c.channels + ch) * p + i) * p + j] * px;
            }
          }
        }
        return s;
      }));
    }
  }
  const np = prompts.tokens?.length ?? 0;
  rows.splice(1, 0, ...(prompts.tokens ?? []));
  const t = rows.length;
  let h = Float64Array.from(rows.flat());
  const dh = d / c.heads;
  for (let blk = 0; blk < c.depth; blk++) {
    const n = (s: string) => w.get(`blocks.${blk}.${s}`)!;
    const x = refLayerNorm(h, d, n("norm1.weight"), n("norm1.bias"), c.layerNormEps);
    const q = refDense(x, n("attn.q.weight"), n("attn.q.bias"));
    const pre = prompts.prefixes?.get(blk);
    const k = [...(pre?.key.flat() ?? []), ...refDense(x, n("attn.k.weight"), n("attn.k.bias"))];
    const v = [...(pre?.value.flat() ?? []), ...refDense(x, n("attn.v.weight"), n("attn.v.bias"))];
    const tk = k.length / d;
    const a = new Float64Array(t * d);
    for (let hd = 0; hd < c.heads; hd++) {
      for (let i = 0; i < t; i++) {
        const s = Array.from({ length: tk }, (_, j) => {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += q[i * d + hd * dh + e] * k[j * d + hd * dh + e];
          return dot / Math.sqrt(dh);
        });
        const mx = Math.max(...s);
        const ex = s.map((z) => Math.exp(z - mx));
        const z = ex.reduce((u, y) => u + y, 0);
        for (let e = 0; e < dh; e++) {
          let acc = 0;
          for (let j = 0; j < tk; j++) acc += (ex[j] / z) * v[j * d + hd * dh + e];
          a[i * d + hd * dh + e] = acc;
        }
      }
    }
    const o = refDense(a, n("attn.proj.weight"), n("attn.proj.bias"));
    h = h.map((y, i) => y + o[i]);
    const x2 = refLayerNorm(h, d, n("norm2.weight"), n("norm2.bias"), c.layerNormEps);
    const gl = refDense(x2, n("mlp.fc1.weight"), n("mlp.fc1.bias")).map((y) =>
      0.5 * y * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (y + 0.044715 * y ** 3)))
    );
    const m = refDense(gl, n("mlp.fc2.weight"), n("mlp.fc2.bias"));
    h = h.map((y, i) => y + m[i]);
  }
  const normed = refLayerNorm(h, d, w.get("norm.weight")!, w.get("norm.bias")!, c.layerNormEps);
  if (pool === "cls") return normed.slice(0, d);
  const out = new Float64Array(d);
  for (let r = 1; r <= np; r++) for (let i = 0; i < d; i++) out[i] += normed[r * d + i] / np;
  return out;
}

function randomRows(rng: Rng, n: number, d: number, scale: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: d }, () => scale * rng.normal()));
}

Deno.test("ViT prompts: empty prompts and no prompts give the plain forward bit for bit; lora: false drops LoRA", async () => {
  await initBackend("cpu");
  const vit = createVit(MICRO, { rng: new Rng(11) });
  const x = tf.tensor4d(images(2, 12), [2, 32, 32, 3]);
  const plain = vit.features(x, { training: false });
  const empty = tf.zeros([2, 0, 32]) as tf.Tensor3D;
  const variants = [
    vit.features(x, { training: false, prompts: {} }),
    vit.features(x, { training: false, prompts: { tokens: empty } }),
    vit.features(x, {
      training: false,
      prompts: { tokens: empty, prefixes: new Map([[0, { key: empty, value: empty }]]) },
      pool: "cls",
    }),
    vit.features(x, { training: false, lora: true }),
  ];
  const want = await plain.data();
  for (const f of variants) assertEquals(await f.data(), want);
  // LoRA B is zero at creation, so the adapter-free pass equals the plain one even after B moves.
  setLoraB(vit.loraSites(), 13);
  const adapted = vit.features(x, { training: false });
  const baseOnly = vit.features(x, { training: false, lora: false });
  assertEquals(await baseOnly.data(), want);
  assert(maxAbsDiff(await adapted.data(), want) > 1e-4);
  assertThrows(() => vit.features(x, { training: false, pool: "prompts" }), Error, "needs prompt");
  assertThrows(
    () =>
      vit.features(x, { training: false, prompts: { tokens: tf.zeros([2, 1, 8]) as tf.Tensor3D } }),
    Error,
    "prompt tokens",
  );
  assertThrows(
    () =>
      vit.features(x, {
        training: false,
        prompts: { prefixes: new Map([[2, { key: empty, value: empty }]]) },
      }),
    Error,
    "blocks are 0..1",
  );
  tf.dispose([x, plain, empty, ...variants, adapted, baseOnly]);
  vit.dispose();
});

Deno.test("ViT prompts: tokens, prefixes and prompt pooling match a plain-JS reference (cpu and wasm, 1e-4)", async () => {
  const config: VitConfig = { ...MICRO, lora: { rank: 2, alpha: 4, dropout: 0 } };
  const rng = new Rng(21);
  const d = config.dim;
  // Per image: 3 prompt tokens; prefixes of length 2 on block 0 and 4 on block 1.
  const tokens = [randomRows(rng, 3, d, 1), randomRows(rng, 3, d, 1)];
  const pre = (len: number) =>
    [0, 1].map(() => ({
      key: randomRows(rng, len, d, 0.5),
      value: randomRows(rng, len, d, 0.5),
    }));
  const p0 = pre(2);
  const p1 = pre(4);
  const x = images(2, 22);
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const vit = createVit(config, { rng: new Rng(23) });
    const weights = await snapshot(vit);
    const t3 = (rows: number[][][]) =>
      tf.tensor3d(rows.flat(2), [rows.length, rows[0].length, d]) as tf.Tensor3D;
    const prompts = {
      tokens: t3(tokens),
      prefixes: new Map([
        [0, { key: t3(p0.map((p) => p.key)), value: t3(p0.map((p) => p.value)) }],
        [1, { key: t3(p1.map((p) => p.key)), value: t3(p1.map((p) => p.value)) }],
      ]),
    };
    const xt = tf.tensor4d(x, [2, 32, 32, 3]);
    for (const pool of ["cls", "prompts"] as const) {
      for (const usePrefixes of [false, true]) {
        const f = vit.features(xt, {
          training: false,
          prompts: usePrefixes ? prompts : { tokens: prompts.tokens },
          pool,
        });
        const got = await f.data();
        f.dispose();
        for (let i = 0; i < 2; i++) {
          const want = referenceFeatures(weights, config, x.subarray(i * 3072, (i + 1) * 3072), {
            tokens: tokens[i],
            prefixes: usePrefixes ? new Map([[0, p0[i]], [1, p1[i]]]) : undefined,
          }, pool);
          const diff = maxAbsDiff(got.subarray(i * d, (i + 1) * d), want);
          assert(diff < 1e-4, `${backend} ${pool} prefixes=${usePrefixes} image ${i}: ${diff}`);
        }
      }
    }
    // The prompts matter: the cls feature moves.
    const plain = vit.features(xt, { training: false });
    const prompted = vit.features(xt, { training: false, prompts });
    assert(maxAbsDiff(await plain.data(), await prompted.data()) > 1e-3);
    tf.dispose([xt, plain, prompted, prompts.tokens]);
    for (const p of prompts.prefixes.values()) tf.dispose([p.key, p.value]);
    vit.dispose();
  }
});

Deno.test("vit loraTargets k,v: sites on k and v only; q equals the frozen backbone's (merged-weight reference)", async () => {
  await initBackend("cpu");
  const config: VitConfig = {
    ...VIT_PRESETS.micro,
    lora: { rank: 2, alpha: 4, dropout: 0 },
    loraTargets: ["v", "k"],
  };
  const vit = createVit(config, { rng: new Rng(3) });
  const sites = vit.loraSites();
  assertEquals(sites.map((s) => s.name), [
    "blocks.0.attn.k",
    "blocks.0.attn.v",
    "blocks.1.attn.k",
    "blocks.1.attn.v",
  ]);
  // Non-zero B everywhere, so every site changes its projection.
  const rng = new Rng(11);
  for (const s of sites) {
    s.b.assign(tf.tensor(Float32Array.from({ length: s.b.size }, () => rng.normal()), s.b.shape));
  }
  // Reference: no LoRA at all, k and v weights replaced by W0 + s·B·A (s = alpha/r = 2), q as it is.
  const weights = new Map<string, TensorData>();
  for (const [name, v] of vit.baseWeights()) {
    weights.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
  }
  for (const s of sites) {
    const w = weights.get(`${s.name}.weight`)!;
    const a = (await s.a.data()) as Float32Array; // [r, dIn]
    const b = (await s.b.data()) as Float32Array; // [dOut, r]
    const merged = Float32Array.from(w.data);
    for (let o = 0; o < s.dOut; o++) {
      for (let i = 0; i < s.dIn; i++) {
        let d = 0;
        for (let k = 0; k < 2; k++) d += b[o * 2 + k] * a[k * s.dIn + i];
        merged[o * s.dIn + i] += 2 * d;
      }
    }
    weights.set(`${s.name}.weight`, { shape: w.shape, data: merged });
  }
  const ref = createVit({ ...config, loraBlocks: [] }, { rng: new Rng(3), weights });
  const plain = createVit({ ...config, loraBlocks: [] }, {
    rng: new Rng(3),
    weights: new Map(
      [...vit.baseWeights()].map((
        [n, v],
      ) => [n, { shape: v.shape, data: v.dataSync() as Float32Array }]),
    ),
  });
  const x = tf.tensor4d(images(3, 4), [3, 32, 32, 3]);
  const got = vit.features(x, { training: false });
  const want = ref.features(x, { training: false });
  const base = plain.features(x, { training: false });
  const [g, w, p] = [await got.data(), await want.data(), await base.data()];
  for (let i = 0; i < g.length; i++) {
    assert(Math.abs(g[i] - w[i]) < 1e-5, `feature ${i}: ${g[i]} vs ${w[i]}`);
  }
  assert(g.some((v, i) => Math.abs(v - p[i]) > 1e-3), "the k,v adapters changed nothing");
  tf.dispose([x, got, want, base]);
  [vit, ref, plain].forEach((m) => m.dispose());
  assertThrows(
    () => createVit({ ...config, loraTargets: ["q", "o" as "q"] }, { rng: new Rng(0) }),
    Error,
    "loraTargets",
  );
  assertThrows(
    () => createVit({ ...config, loraTargets: [] }, { rng: new Rng(0) }),
    Error,
    "loraTargets",
  );
});
