/**
 * A pre-LN Vision Transformer with LoRA on the query and value projections.
 *
 * Read top to bottom: configuration and presets, parameters (names, shapes,
 * initialisation), then the forward pass — patch embedding, cls token and
 * position embedding, `depth` blocks of
 *
 *     h = h + proj(attention(q(LN1 h), k(LN1 h), v(LN1 h)))
 *     h = h + fc2(gelu(fc1(LN2 h)))
 *
 * and the final LayerNorm of the cls token, which is the feature vector. The
 * GELU is the tanh approximation unless the config says `gelu: "erf"` (the
 * exact form of PyTorch, timm and Hugging Face checkpoints; see
 * `hf_vit.ts`).
 *
 * Weights use timm's names and PyTorch layouts (`[out, in]` linear weights,
 * patch embedding `[dim, channels, p, p]` like timm's convolution), so real
 * checkpoints can be loaded with {@link applyWeights} after renaming (timm's
 * fused `qkv` splits into `q`, `k`, `v`). LoRA sites sit on the projections of
 * `config.loraTargets` (default `attn.q` and `attn.v`; HiDe-LoRA: `k`, `v`) of the
 * blocks in `config.loraBlocks`, in the fixed order block by block, q before k before v
 * (`blocks.0.attn.q, blocks.0.attn.v, blocks.1.attn.q, …`: the TreeLoRA depth order).
 *
 * Prompt methods (L2P, DualPrompt) pass `prompts` to the features pass:
 * prompt-tuning tokens inserted after [CLS], and/or key/value prefixes on the
 * attention of chosen blocks (see {@link VitForwardOptions}); `lora: false`
 * gives the adapter-free base model (their frozen query).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { Rng } from "../random.ts";
import type { LoraConfig, LoraSite } from "./backbone.ts";
import { makeVariable, truncatedNormal, uniqueScope } from "./init.ts";
import {
  geluErf,
  geluTanh,
  layerNorm,
  linear,
  type LinearParams,
  type LoraForward,
  multiHeadAttention,
  type NormParams,
  siteSeed,
} from "./layers.ts";
import { createLoraSite, loraScale } from "./lora.ts";
import { prefixAttention, type PrefixPrompt, type Prompts } from "./prompt.ts";
import type { TensorData, TensorMap } from "./safetensors.ts";
import type { Tensor, Tensor2D, Tensor4D, Variable } from "../tensor.ts";

// ---------------------------------------------------------------------------
// Configuration

/** Shape of a ViT and where its LoRA sites are. */
export interface VitConfig {
  /** Input height = width in pixels (images are NHWC float32). */
  imageSize: number;
  /** Patch side p; the model sees (imageSize / p)² patch tokens plus the cls token. */
  patchSize: number;
  /** Input channels (3). */
  channels: number;
  /** Token width. */
  dim: number;
  /** Number of transformer blocks. */
  depth: number;
  /** Attention heads (dim must be divisible by heads). */
  heads: number;
  /** MLP hidden width = mlpRatio · dim. */
  mlpRatio: number;
  /** LayerNorm epsilon (timm's ViT uses 1e-6). */
  layerNormEps: number;
  /**
   * The MLP's GELU: `"tanh"` (the approximation, the default when absent) or
   * `"erf"` (exact, as PyTorch's `nn.GELU()`, timm and Hugging Face ViT
   * checkpoints use). The two differ by at most 4.73e-4 per activation.
   */
  gelu?: "tanh" | "erf";
  /** The adapter: rank, alpha, dropout. */
  lora: LoraConfig;
  /**
   * Blocks whose attention projections (`loraTargets`) carry LoRA, ascending. The presets list
   * every block; the paper's ViT setting (HiDe-LoRA's `lora_depth=5`) is [0, 1, 2, 3, 4].
   */
  loraBlocks: number[];
  /**
   * Which attention projections of a LoRA block carry LoRA, in site order: a non-empty subset
   * of `q`, `k`, `v` (absent = `["q", "v"]`, PEFT's and the TreeLoRA LLM code's choice).
   * HiDe-LoRA's released ViT adapts `["k", "v"]` of the fused qkv projection, leaving q
   * untouched.
   */
  loraTargets?: LoraTarget[];
}

/** An attention projection that can carry a LoRA site. */
export type LoraTarget = "q" | "k" | "v";

/** The LoRA targets when a config names none: q and v. */
export const DEFAULT_LORA_TARGETS: readonly LoraTarget[] = Object.freeze(["q", "v"]);

/**
 * The resolved LoRA targets of a config, in site order (q before k before v).
 *
 * @example
 * ```ts
 * import { loraTargetsOf, VIT_PRESETS } from "./vit.ts";
 * loraTargetsOf({ ...VIT_PRESETS.micro, loraTargets: ["v", "k"] }); // ["k", "v"]
 * ```
 */
export function loraTargetsOf(config: Pick<VitConfig, "loraTargets">): LoraTarget[] {
  const given = config.loraTargets ?? DEFAULT_LORA_TARGETS;
  return (["q", "k", "v"] as const).filter((t) => given.includes(t));
}

/** LoRA defaults of the presets: rank 4, alpha 8 (scale 2), no dropout. */
export const DEFAULT_VIT_LORA: Readonly<LoraConfig> = Object.freeze({
  rank: 4,
  alpha: 8,
  dropout: 0,
});

function preset(
  shape: Pick<VitConfig, "imageSize" | "patchSize" | "dim" | "depth" | "heads">,
): VitConfig {
  return Object.freeze({
    channels: 3,
    mlpRatio: 4,
    layerNormEps: 1e-6,
    ...shape,
    lora: { ...DEFAULT_VIT_LORA },
    loraBlocks: Array.from({ length: shape.depth }, (_, i) => i),
  });
}

/**
 * Named ViT shapes. `micro` is for tests; `tiny` (about 85 img/s training on
 * wasm), `tiny-p8` (the same with 8×8 patches: 16 tokens + cls, several
 * times faster), `tiny6-p8` (the same with 6 blocks, so that LoRA on blocks 0–4 is the paper's
 * tree depth 5 below an unadapted top; the default of `exp:split-cifar`) and `small` are the
 * CIFAR-sized backbones; `vit-b16-shapes` has the
 * shapes of ViT-B/16 at 224 px, for loading real weights (too slow to train here).
 *
 * @example
 * ```ts
 * import { VIT_PRESETS } from "./vit.ts";
 * const config = { ...VIT_PRESETS.tiny, loraBlocks: [0, 1] };
 * ```
 */
export const VIT_PRESETS: Readonly<Record<string, VitConfig>> = Object.freeze({
  micro: preset({ imageSize: 32, patchSize: 8, dim: 32, depth: 2, heads: 2 }),
  tiny: preset({ imageSize: 32, patchSize: 4, dim: 64, depth: 4, heads: 4 }),
  "tiny-p8": preset({ imageSize: 32, patchSize: 8, dim: 64, depth: 4, heads: 4 }),
  "tiny6-p8": preset({ imageSize: 32, patchSize: 8, dim: 64, depth: 6, heads: 4 }),
  small: preset({ imageSize: 32, patchSize: 4, dim: 128, depth: 6, heads: 4 }),
  "vit-b16-shapes": preset({ imageSize: 224, patchSize: 16, dim: 768, depth: 12, heads: 12 }),
});

function validate(c: VitConfig): void {
  const bad = (msg: string): never => {
    throw new Error(`VitConfig: ${msg}`);
  };
  for (const k of ["imageSize", "patchSize", "channels", "dim", "depth", "heads"] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.imageSize % c.patchSize !== 0) {
    bad(`imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  }
  if (c.dim % c.heads !== 0) bad(`dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (!Number.isInteger(c.mlpRatio * c.dim) || c.mlpRatio <= 0) bad(`bad mlpRatio ${c.mlpRatio}`);
  if (!(c.layerNormEps > 0)) bad(`layerNormEps must be > 0, got ${c.layerNormEps}`);
  if (c.gelu !== undefined && c.gelu !== "tanh" && c.gelu !== "erf") {
    bad(`gelu must be "tanh" or "erf", got ${JSON.stringify(c.gelu)}`);
  }
  loraScale(c.lora);
  if (!(c.lora.dropout >= 0 && c.lora.dropout < 1)) {
    bad(`lora.dropout must be in [0, 1), got ${c.lora.dropout}`);
  }
  const seen = new Set<number>();
  for (const b of c.loraBlocks) {
    if (!Number.isInteger(b) || b < 0 || b >= c.depth) {
      bad(`loraBlocks has ${b}, but blocks are 0..${c.depth - 1}`);
    }
    if (seen.has(b)) bad(`loraBlocks lists block ${b} twice`);
    seen.add(b);
  }
  if (c.loraTargets !== undefined) {
    const t = c.loraTargets as unknown[];
    if (!Array.isArray(t) || t.length === 0) bad("loraTargets must list at least one of q, k, v");
    for (const x of t) {
      if (x !== "q" && x !== "k" && x !== "v") {
        bad(`loraTargets has ${JSON.stringify(x)}; allowed: q, k, v`);
      }
    }
    if (new Set(t).size !== t.length) bad(`loraTargets lists a projection twice: ${t.join(",")}`);
  }
}

// ---------------------------------------------------------------------------
// Parameters

type Init = "trunc_normal" | "zeros" | "ones";

/** Base parameter names, shapes and initialisers, in their fixed order. */
function baseSpec(c: VitConfig): { name: string; shape: number[]; init: Init }[] {
  const d = c.dim;
  const hidden = c.mlpRatio * d;
  const tokens = (c.imageSize / c.patchSize) ** 2 + 1;
  const spec: { name: string; shape: number[]; init: Init }[] = [
    {
      name: "patch_embed.weight",
      shape: [d, c.channels, c.patchSize, c.patchSize],
      init: "trunc_normal",
    },
    { name: "patch_embed.bias", shape: [d], init: "zeros" },
    { name: "cls_token", shape: [1, 1, d], init: "trunc_normal" },
    { name: "pos_embed", shape: [1, tokens, d], init: "trunc_normal" },
  ];
  const lin = (name: string, out: number, inp: number) => {
    spec.push({ name: `${name}.weight`, shape: [out, inp], init: "trunc_normal" });
    spec.push({ name: `${name}.bias`, shape: [out], init: "zeros" });
  };
  const norm = (name: string) => {
    spec.push({ name: `${name}.weight`, shape: [d], init: "ones" });
    spec.push({ name: `${name}.bias`, shape: [d], init: "zeros" });
  };
  for (let i = 0; i < c.depth; i++) {
    norm(`blocks.${i}.norm1`);
    for (const p of ["q", "k", "v", "proj"]) lin(`blocks.${i}.attn.${p}`, d, d);
    norm(`blocks.${i}.norm2`);
    lin(`blocks.${i}.mlp.fc1`, hidden, d);
    lin(`blocks.${i}.mlp.fc2`, d, hidden);
  }
  norm("norm");
  return spec;
}

function initialValues(shape: number[], init: Init, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (init === "zeros") return new Float32Array(n);
  if (init === "ones") return new Float32Array(n).fill(1);
  return truncatedNormal(n, { rng, std: 0.02 });
}

function weightEntry(weights: TensorMap, name: string): TensorData | undefined {
  return weights instanceof Map ? weights.get(name) : weights[name];
}

function checkWeight(name: string, w: TensorData, shape: number[]): void {
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`weight "${name}": expected shape [${shape}], got [${w.shape}]`);
  }
  if (w.data.length !== shape.reduce((a, b) => a * b, 1)) {
    throw new Error(
      `weight "${name}": shape [${shape}] needs ${
        shape.reduce((a, b) => a * b, 1)
      } values, got ${w.data.length}`,
    );
  }
}

interface BlockParams {
  norm1: NormParams;
  q: LinearParams;
  k: LinearParams;
  v: LinearParams;
  proj: LinearParams;
  norm2: NormParams;
  fc1: LinearParams;
  fc2: LinearParams;
}

// ---------------------------------------------------------------------------
// Forward pieces

/**
 * Patch embedding as a matMul: NHWC images [B, H, W, C] are cut into p×p
 * patches (row-major over the grid), each flattened in (row, column, channel)
 * order, and multiplied by the conv-layout weight [dim, C, p, p] (transposed
 * to [p·p·C, dim]) plus bias. Returns tokens [B·(H/p)·(W/p), dim].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { patchEmbed } from "./vit.ts";
 * const x = tf.zeros([1, 8, 8, 3]) as tf.Tensor4D;
 * const w = tf.zeros([16, 3, 4, 4]) as tf.Tensor4D;
 * const tokens = patchEmbed(x, { weight: w, bias: tf.zeros([16]), patchSize: 4 }); // [4, 16]
 * ```
 */
export function patchEmbed(
  x: Tensor4D,
  options: { weight: Tensor; bias: Tensor; patchSize: number },
): Tensor2D {
  const { weight, bias } = options;
  const [b, h, w, c] = x.shape;
  const p = options.patchSize;
  if (
    weight.rank !== 4 || weight.shape[1] !== c || weight.shape[2] !== p || weight.shape[3] !== p
  ) {
    throw new Error(`patchEmbed: expected weight [dim, ${c}, ${p}, ${p}], got [${weight.shape}]`);
  }
  const dim = weight.shape[0];
  if (h % p !== 0 || w % p !== 0) throw new Error(`patchEmbed: ${h}×${w} is not divisible by ${p}`);
  return tf.tidy(() => {
    // [B, H, W, C] → [B·gh, p, gw, p·C] → [B·gh, gw, p, p·C] → [B·T, p·p·C]
    const patches = tf.reshape(
      tf.transpose(tf.reshape(x, [b * (h / p), p, w / p, p * c]), [0, 2, 1, 3]),
      [b * (h / p) * (w / p), p * p * c],
    );
    // [dim, C, p, p] → [p, p, C, dim] → [p·p·C, dim], matching the patch flattening.
    const wt = tf.reshape(tf.transpose(weight, [2, 3, 1, 0]), [p * p * c, dim]);
    return tf.add(tf.matMul(patches, wt), bias) as Tensor2D;
  });
}

// ---------------------------------------------------------------------------
// The model

/**
 * Options of {@link Vit.features}. Without `prompts`, `pool` and `lora` the
 * pass is the plain ViT (the same ops, bit for bit).
 */
export interface VitForwardOptions {
  /** Training mode: LoRA dropout on. */
  training: boolean;
  /** Seed of the LoRA dropout masks when training (each site derives its own). */
  seed?: number;
  /**
   * Prompts (`prompt.ts`). `tokens` [B, P, dim] are inserted right after [CLS],
   * after the position embedding is added (prompt tokens carry no position
   * embedding: the pre-trained table has no slots for them, and a learned
   * prompt absorbs any constant offset), so blocks see 1 + P + patches tokens.
   * `prefixes` maps a block index to key/value prefixes [B, P, dim] that are
   * prepended to that block's attention keys and values after their
   * projections (prefix-tuning, as DualPrompt); queries and outputs keep the
   * token count.
   */
  prompts?: Prompts;
  /**
   * The feature vector: `"cls"` (default), the final-LN [CLS] output; or
   * `"prompts"`, the mean over the prompt tokens' final-LN outputs (L2P's
   * `head_type="prompt"`; needs `prompts.tokens` with P > 0).
   */
  pool?: "cls" | "prompts";
  /** `false` leaves out every LoRA branch (and its pool): the base model alone. Default true. */
  lora?: boolean;
}

/** A ViT instance: forward pass, LoRA sites and named base weights. */
export interface Vit {
  /** The configuration it was built with. */
  readonly config: VitConfig;
  /** Tokens per image including cls: (imageSize / patchSize)² + 1. */
  readonly numTokens: number;
  /**
   * The feature vector [B, dim] for NHWC images [B, H, W, C]: by default the
   * final-LN cls vector. `seed` drives the LoRA dropout masks when training
   * (each site derives its own); `prompts`, `pool` and `lora` are described in
   * {@link VitForwardOptions}.
   */
  features(x: Tensor4D, options: VitForwardOptions): Tensor2D;
  /** LoRA sites block by block, q before k before v (blocks.0.attn.q, blocks.0.attn.v, …). */
  loraSites(): LoraSite[];
  /** Base (non-LoRA) weights by timm-style name, in a fixed order. */
  baseWeights(): Map<string, Variable>;
  /** Make the base weights trainable (pre-training) or frozen (continual learning; the default). */
  setBaseTrainable(trainable: boolean): void;
  /** Parameter counts: base weights and LoRA A/B. */
  parameterCount(): { base: number; lora: number };
  /** Free every variable. */
  dispose(): void;
}

/**
 * Build a ViT. The base weights come from `weights` when given (every name
 * required, shapes checked), otherwise from a truncated normal (std 0.02) for
 * linear maps and embeddings, zeros for biases and ones/zeros for LayerNorms.
 * LoRA A matrices are drawn from their own stream, split off `rng` before
 * anything else, so they are the same whether the base is random or loaded.
 * Base weights start frozen (`trainable = false`).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../random.ts";
 * import { createVit, VIT_PRESETS } from "./vit.ts";
 * const vit = createVit(VIT_PRESETS.micro, { rng: new Rng(0) });
 * const f = vit.features(tf.zeros([2, 32, 32, 3]) as tf.Tensor4D, { training: false }); // [2, 32]
 * f.dispose();
 * vit.dispose();
 * ```
 */
export function createVit(
  config: VitConfig,
  options: { rng: Rng; weights?: TensorMap },
): Vit {
  // A config read from JSON may omit loraBlocks: that means every block.
  const blocksOrAll = config.loraBlocks ?? Array.from({ length: config.depth }, (_, i) => i);
  const c: VitConfig = { ...config, lora: { ...config.lora }, loraBlocks: [...blocksOrAll] };
  validate(c);
  const baseRng = new Rng(options.rng.seed());
  const loraRng = new Rng(options.rng.seed());
  const scope = uniqueScope("vit");
  const spec = baseSpec(c);

  if (options.weights) {
    const known = new Set(spec.map((s) => s.name));
    const names = options.weights instanceof Map
      ? [...options.weights.keys()]
      : Object.keys(options.weights);
    const missing = spec.filter((s) => !weightEntry(options.weights!, s.name)).map((s) => s.name);
    const extra = names.filter((n) => !known.has(n));
    if (missing.length > 0 || extra.length > 0) {
      throw new Error(
        `createVit: weights do not match the config (missing: ${missing.join(", ") || "none"}; ` +
          `unexpected: ${extra.join(", ") || "none"})`,
      );
    }
    for (const s of spec) checkWeight(s.name, weightEntry(options.weights, s.name)!, s.shape);
  }

  const base = new Map<string, Variable>();
  const sites: LoraSite[] = [];
  try {
    for (const s of spec) {
      const data = options.weights
        ? weightEntry(options.weights, s.name)!.data
        : initialValues(s.shape, s.init, baseRng);
      base.set(
        s.name,
        makeVariable(data, s.shape, { name: `${scope}/${s.name}`, trainable: false }),
      );
    }
    for (const i of [...c.loraBlocks].sort((a, b) => a - b)) {
      for (const p of loraTargetsOf(c)) {
        sites.push(createLoraSite(`blocks.${i}.attn.${p}`, {
          dIn: c.dim,
          dOut: c.dim,
          lora: c.lora,
          rng: loraRng,
          scope,
        }));
      }
    }
  } catch (err) {
    for (const v of base.values()) v.dispose();
    for (const s of sites) [s.a, s.b].forEach((v) => v.dispose());
    throw err;
  }

  const w = (name: string) => base.get(name)!;
  const norm = (name: string): NormParams => ({
    weight: w(`${name}.weight`),
    bias: w(`${name}.bias`),
  });
  const siteByName = new Map(sites.map((s) => [s.name, s]));
  const lin = (name: string): LinearParams => ({
    weight: w(`${name}.weight`),
    bias: w(`${name}.bias`),
    lora: siteByName.get(name),
  });
  const blocks: BlockParams[] = Array.from({ length: c.depth }, (_, i) => ({
    norm1: norm(`blocks.${i}.norm1`),
    q: lin(`blocks.${i}.attn.q`),
    k: lin(`blocks.${i}.attn.k`),
    v: lin(`blocks.${i}.attn.v`),
    proj: lin(`blocks.${i}.attn.proj`),
    norm2: norm(`blocks.${i}.norm2`),
    fc1: lin(`blocks.${i}.mlp.fc1`),
    fc2: lin(`blocks.${i}.mlp.fc2`),
  }));
  const siteIndex = new Map(sites.map((s, i) => [s.name, i]));
  const numTokens = (c.imageSize / c.patchSize) ** 2 + 1;
  const scale = loraScale(c.lora);
  const gelu = c.gelu === "erf" ? geluErf : geluTanh;
  let disposed = false;

  function block(
    h: Tensor2D,
    p: BlockParams,
    at: { batch: number; tokens: number; lora?: LoraForward; prefix?: PrefixPrompt },
  ): Tensor2D {
    const { batch, tokens, lora } = at;
    const seedOf = (site?: LoraSite) =>
      site && lora ? siteSeed(lora.seed, siteIndex.get(site.name)!) : undefined;
    const x = layerNorm(h, p.norm1, { eps: c.layerNormEps });
    const q = linear(x, p.q, { lora, siteSeed: seedOf(p.q.lora) });
    const k = linear(x, p.k, { lora, siteSeed: seedOf(p.k.lora) });
    const v = linear(x, p.v, { lora, siteSeed: seedOf(p.v.lora) });
    const a = at.prefix
      ? prefixAttention({ q, k, v }, at.prefix, { batch, tokens, heads: c.heads })
      : multiHeadAttention({ q, k, v }, { batch, tokens, heads: c.heads });
    h = tf.add(h, linear(a, p.proj));
    const m = linear(
      gelu(linear(layerNorm(h, p.norm2, { eps: c.layerNormEps }), p.fc1)),
      p.fc2,
    );
    return tf.add(h, m);
  }

  /** The prompt inputs of one pass, checked: tokens (P > 0) and non-empty prefixes by block. */
  function checkedPrompts(prompts: Prompts | undefined, b: number) {
    const shapeOk = (t: Tensor) => t.rank === 3 && t.shape[0] === b && t.shape[2] === c.dim;
    const tokens = prompts?.tokens;
    if (tokens && !shapeOk(tokens)) {
      throw new Error(
        `Vit.features: expected prompt tokens [${b}, P, ${c.dim}], got [${tokens.shape}]`,
      );
    }
    const prefixes = new Map<number, PrefixPrompt>();
    for (const [i, pre] of prompts?.prefixes ?? []) {
      if (!Number.isInteger(i) || i < 0 || i >= c.depth) {
        throw new Error(`Vit.features: a prefix for block ${i}, but blocks are 0..${c.depth - 1}`);
      }
      if (!shapeOk(pre.key) || !shapeOk(pre.value) || pre.key.shape[1] !== pre.value.shape[1]) {
        throw new Error(
          `Vit.features: block ${i}: expected key and value prefixes [${b}, P, ${c.dim}], ` +
            `got [${pre.key.shape}] and [${pre.value.shape}]`,
        );
      }
      if (pre.key.shape[1] > 0) prefixes.set(i, pre);
    }
    return { tokens: tokens && tokens.shape[1] > 0 ? tokens : undefined, prefixes };
  }

  function features(x: Tensor4D, opts: VitForwardOptions): Tensor2D {
    if (disposed) throw new Error("Vit.features: the model has been disposed");
    const [b, hh, ww, ch] = x.shape;
    if (x.rank !== 4 || hh !== c.imageSize || ww !== c.imageSize || ch !== c.channels) {
      throw new Error(
        `Vit.features: expected NHWC images [B, ${c.imageSize}, ${c.imageSize}, ${c.channels}], ` +
          `got [${x.shape}]`,
      );
    }
    const { tokens: promptTokens, prefixes } = checkedPrompts(opts.prompts, b);
    const np = promptTokens ? promptTokens.shape[1] : 0;
    const pool = opts.pool ?? "cls";
    if (pool !== "cls" && pool !== "prompts") {
      throw new Error(`Vit.features: pool must be "cls" or "prompts", got ${JSON.stringify(pool)}`);
    }
    if (pool === "prompts" && np === 0) {
      throw new Error('Vit.features: pool "prompts" needs prompt tokens (prompts.tokens, P > 0)');
    }
    const lora: LoraForward | undefined = opts.lora === false ? undefined : {
      scale,
      dropout: c.lora.dropout,
      training: opts.training,
      seed: opts.seed,
    };
    return tf.tidy(() => {
      const patches = patchEmbed(x, {
        weight: w("patch_embed.weight"),
        bias: w("patch_embed.bias"),
        patchSize: c.patchSize,
      });
      const cls = tf.tile(w("cls_token"), [b, 1, 1]);
      const tokens = tf.concat([cls, tf.reshape(patches, [b, numTokens - 1, c.dim])], 1);
      let h = tf.reshape(tf.add(tokens, w("pos_embed")), [b * numTokens, c.dim]) as Tensor2D;
      const t = numTokens + np;
      if (promptTokens) {
        // [cls, patches] + pos → [cls, prompts, patches]
        const h3 = tf.reshape(h, [b, numTokens, c.dim]);
        h = tf.reshape(
          tf.concat([
            tf.slice(h3, [0, 0, 0], [b, 1, c.dim]),
            promptTokens,
            tf.slice(h3, [0, 1, 0], [b, numTokens - 1, c.dim]),
          ], 1),
          [b * t, c.dim],
        );
      }
      blocks.forEach((p, i) => {
        h = block(h, p, { batch: b, tokens: t, lora, prefix: prefixes.get(i) });
      });
      if (pool === "prompts") {
        // L2P: LayerNorm every prompt token's output, then average them.
        const out = tf.slice(tf.reshape(h, [b, t, c.dim]), [0, 1, 0], [b, np, c.dim]);
        const normed = layerNorm(tf.reshape(out, [b * np, c.dim]) as Tensor2D, norm("norm"), {
          eps: c.layerNormEps,
        });
        return tf.mean(tf.reshape(normed, [b, np, c.dim]), 1) as Tensor2D;
      }
      const cls3 = tf.slice(tf.reshape(h, [b, t, c.dim]), [0, 0, 0], [b, 1, c.dim]);
      const clsOut = tf.reshape(cls3, [b, c.dim]) as Tensor2D;
      return layerNorm(clsOut, norm("norm"), { eps: c.layerNormEps });
    });
  }

  return {
    config: c,
    numTokens,
    features,
    loraSites: () => sites.slice(),
    baseWeights: () => new Map(base),
    setBaseTrainable(trainable: boolean) {
      for (const v of base.values()) v.trainable = trainable;
    },
    parameterCount() {
      let nb = 0;
      for (const v of base.values()) nb += v.size;
      let nl = 0;
      for (const s of sites) nl += s.a.size + s.b.size;
      return { base: nb, lora: nl };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const v of base.values()) v.dispose();
      for (const s of sites) {
        s.a.dispose();
        s.b.dispose();
      }
    },
  };
}

// ---------------------------------------------------------------------------
// Loading weights

/** What {@link applyWeights} did. */
export interface ApplyWeightsReport {
  /** Names assigned. */
  loaded: string[];
  /** Model weights absent from the map (kept as they were). */
  missing: string[];
  /** Map entries the model does not have (ignored). */
  unexpected: string[];
}

/**
 * Copy named arrays into a model's base weights, checking every shape. With
 * `strict` (the default) a missing or unexpected name is an error; without,
 * missing weights keep their values and unexpected entries are ignored. All
 * checks run before anything is assigned.
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { applyWeights, createVit, VIT_PRESETS } from "./vit.ts";
 * const a = createVit(VIT_PRESETS.micro, { rng: new Rng(1) });
 * const b = createVit(VIT_PRESETS.micro, { rng: new Rng(2) });
 * const weights = new Map();
 * for (const [name, v] of a.baseWeights()) {
 *   weights.set(name, { shape: v.shape, data: await v.data() as Float32Array });
 * }
 * applyWeights(b, weights); // b's base now equals a's
 * a.dispose();
 * b.dispose();
 * ```
 */
export function applyWeights(
  model: { baseWeights(): Map<string, Variable> },
  weights: TensorMap,
  options: { strict?: boolean } = {},
): ApplyWeightsReport {
  const strict = options.strict ?? true;
  const vars = model.baseWeights();
  const names = weights instanceof Map ? [...weights.keys()] : Object.keys(weights);
  const missing = [...vars.keys()].filter((n) => !weightEntry(weights, n));
  const unexpected = names.filter((n) => !vars.has(n));
  if (strict && (missing.length > 0 || unexpected.length > 0)) {
    throw new Error(
      `applyWeights (strict): missing: ${missing.join(", ") || "none"}; unexpected: ${
        unexpected.join(", ") || "none"
      }`,
    );
  }
  const loaded: string[] = [];
  for (const [name, v] of vars) {
    const entry = weightEntry(weights, name);
    if (!entry) continue;
    checkWeight(name, entry, v.shape);
    loaded.push(name);
  }
  for (const name of loaded) {
    const v = vars.get(name)!;
    const entry = weightEntry(weights, name)!;
    tf.tidy(() => v.assign(tf.tensor(entry.data, v.shape, "float32")));
  }
  return { loaded, missing, unexpected };
}
