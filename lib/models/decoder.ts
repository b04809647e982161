/**
 * A LLaMA-style decoder-only language model with LoRA on the query and value
 * projections.
 *
 * Read top to bottom: configuration and presets, parameters (Hugging Face
 * names, PyTorch `[out, in]` layouts, initialisation), the forward pieces —
 * token embedding, rotary position embedding (RoPE), grouped-query causal
 * attention, SwiGLU — and the model, which runs
 *
 *     h = embed(ids) · embeddingScale
 *     for each layer:
 *       h = h + o(attention(rope(q(RMSNorm h)), rope(k(RMSNorm h)), v(RMSNorm h)))
 *       h = h + down(act(gate(RMSNorm h)) ⊙ up(RMSNorm h))
 *     logits = RMSNorm(h) · Wₗₘᵀ      (Wₗₘ = the embedding when tied)
 *
 * LoRA sites sit on `q_proj` and `v_proj` of every layer (spec §4.1), in the
 * fixed order `layers.0.attn.q, layers.0.attn.v, layers.1.attn.q, …` (the
 * TreeLoRA depth order): M = 2 · layers sites.
 *
 * **Left padding.** Batches are left-padded (spec §9.3/§9.4). An attention
 * mask `[B, T]` (1 = real token, 0 = pad) removes padded keys from every
 * query's softmax (an additive −1e9, so their weight is exactly 0), and RoPE
 * positions are counted from each row's first real token:
 * `position = max(cumsum(mask) − 1, 0)`, as Hugging Face `generate` does. A
 * sequence alone and the same sequence left-padded in a batch therefore give
 * the same logits at its real positions. Pad queries see only masked keys;
 * their softmax is uniform and their outputs are meaningless but finite
 * (they are never read: labels are −100 there).
 *
 * **wasm notes** (`shared/docs/tfjs-on-deno.md`). Linear maps are plain 2-D
 * matMuls on explicitly transposed weights; the embedding is a `tf.gather`
 * with a registered custom gradient (the transposed one-hot times the
 * upstream gradient — the stock `gather` gradient needs `UnsortedSegmentSum`,
 * which the wasm backend lacks); RoPE uses slice/concat/mul only; grouped-query
 * attention folds the query heads that share a key/value head into the token
 * axis instead of tiling K and V (the tile gradient stops at rank 4).
 *
 * **Inference cache.** {@link Decoder.extend} runs new tokens against a
 * key/value cache of the earlier ones, so generation costs one token per
 * step instead of a full recompute.
 *
 * **Input-embedding prefix** (prompt tuning: DualPrompt, L2P). `logits` and
 * `extend` take an optional `prefix` [P, dim] (the same for every row) or
 * [B, P, dim], put before each row's token embeddings, as Hugging Face's
 * `inputs_embeds = cat([prompt, embed(ids)])` in the released prompt methods:
 *
 *     h = [prefix ; embed(ids)] · embeddingScale      (the prefix lives in the embedding table's space)
 *     mask = [1 … 1 ; attentionMask]                   (the prefix is always attended)
 *
 * so a left-padded row reads `prefix, pads, tokens`; RoPE positions still come
 * from the mask (`max(cumsum − 1, 0)`), i.e. the prefix sits at 0..P−1 and
 * the row's first real token at P. Logits come back for the token positions
 * only ([B, T, V], or [B, 1, V] with `lastOnly`), so the loss code is the
 * same with or without a prefix. With `extend`, the prefix goes with the first
 * call (empty cache): its keys and values and its mask ones stay in the
 * cache, and later steps need nothing more. An absent or empty (P = 0) prefix
 * runs exactly the code path without one (bit-identical results).
 *
 * **Frozen features.** {@link Decoder.features} is the base model's
 * final hidden state (the LM head's input) averaged over chosen positions,
 * with LoRA bypassed and no prefix: the frozen query of L2P.
 *
 * **Real checkpoints.** Base weights use Hugging Face LLaMA names
 * (`model.embed_tokens.weight`, `model.layers.{i}.self_attn.q_proj.weight`,
 * …, `model.norm.weight`, `lm_head.weight`) and layouts, so a LLaMA, Mistral
 * or Gemma checkpoint converted to float32 safetensors loads with
 * `createDecoder(config, { weights })`. Simplifications (see
 * {@link DECODER_PRESETS}): RoPE is the plain rotate-half form with one θ
 * (LLaMA-3's long-context frequency scaling is not modelled), Mistral's
 * sliding window is not modelled (it only matters beyond 4,096 tokens), and
 * Gemma's RMSNorm computes x̂·(1 + w): a loader must add 1 to Gemma's norm
 * weights.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { Rng } from "../random.ts";
import type { AdaptedModel, LoraConfig, LoraSite } from "./backbone.ts";
import { makeVariable, truncatedNormal, uniqueScope } from "./init.ts";
import {
  geluTanh,
  linear,
  type LinearParams,
  type LoraForward,
  rmsNorm,
  silu,
  siteSeed,
} from "./layers.ts";
import { createLoraSite, loraScale } from "./lora.ts";
import { attentionCore } from "./attention_core.ts";
import type { TensorData, TensorMap } from "./safetensors.ts";
import type { Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable } from "../tensor.ts";

// ---------------------------------------------------------------------------
// Configuration

/** The MLP's gate activation: SiLU (SwiGLU: LLaMA, Mistral) or tanh-GELU (GeGLU: Gemma). */
export type MlpActivation = "silu" | "gelu_tanh";

/** Shape of a decoder-only LM and where its LoRA sites are. */
export interface DecoderConfig {
  /** Rows of the embedding and of the LM head. */
  vocabSize: number;
  /** Hidden width (`hidden_size`). */
  dim: number;
  /** Number of decoder layers (`num_hidden_layers`). */
  layers: number;
  /** Query heads (`num_attention_heads`). */
  heads: number;
  /** Key/value heads (`num_key_value_heads`); fewer than `heads` = grouped-query attention. */
  kvHeads: number;
  /** Width of one head (`head_dim`; dim / heads except in Gemma). Must be even (RoPE). */
  headDim: number;
  /** MLP hidden width (`intermediate_size`). */
  mlpHidden: number;
  /** The MLP's gate activation. */
  mlpActivation: MlpActivation;
  /** Longest sequence the model is meant for (`max_position_embeddings`); informational. */
  contextLength: number;
  /** RoPE base θ (`rope_theta`). */
  ropeTheta: number;
  /** RMSNorm epsilon (`rms_norm_eps`). */
  normEps: number;
  /** The LM head reuses the embedding matrix (`tie_word_embeddings`). */
  tieEmbeddings: boolean;
  /** Multiplier of the token embeddings (1; Gemma uses √dim). */
  embeddingScale: number;
  /** The adapter: rank, alpha, dropout. */
  lora: LoraConfig;
  /** Layers whose q and v projections carry LoRA, ascending; absent = every layer. */
  loraLayers?: number[];
}

/** LoRA defaults of the presets, as the released LLM code (spec §4.1): r 8, α 32 (scale 4), dropout 0.1. */
export const DEFAULT_DECODER_LORA: Readonly<LoraConfig> = Object.freeze({
  rank: 8,
  alpha: 32,
  dropout: 0.1,
});

function preset(
  shape: Omit<DecoderConfig, "lora" | "loraLayers" | "mlpActivation" | "embeddingScale"> & {
    mlpActivation?: MlpActivation;
    embeddingScale?: number;
  },
): DecoderConfig {
  return Object.freeze({
    mlpActivation: "silu" as MlpActivation,
    embeddingScale: 1,
    ...shape,
    lora: { ...DEFAULT_DECODER_LORA },
  });
}

/**
 * Named decoder shapes.
 *
 * - `byte-tiny`: byte-level vocabulary (256 bytes + BOS, EOS, PAD = 259), dim 128, 4 layers, 4
 *   heads, SwiGLU 352, context 128, untied head: about 0.87 M parameters, 8 LoRA sites; trains
 *   here in minutes.
 * - `byte-micro`: dim 32, 2 layers, 2 heads, context 32 (tests).
 * - Shape-only presets with the configurations of the paper's models, for loading real weights
 *   later (far too large to build here): `llama-3.2-1b` (tied embeddings; its RoPE frequency
 *   scaling is not modelled), `llama-2-7b`, `mistral-7b` (v0.3; sliding window not modelled) and
 *   `gemma-2b` (GeGLU, head dim 256, one KV head, embeddings × √2048, tied; RMSNorm weights
 *   must be loaded as 1 + w).
 *
 * @example
 * ```ts
 * import { DECODER_PRESETS } from "./decoder.ts";
 * const config = { ...DECODER_PRESETS["byte-tiny"], lora: { rank: 4, alpha: 8, dropout: 0 } };
 * ```
 */
export const DECODER_PRESETS: Readonly<Record<string, DecoderConfig>> = Object.freeze({
  "byte-tiny": preset({
    vocabSize: 259,
    dim: 128,
    layers: 4,
    heads: 4,
    kvHeads: 4,
    headDim: 32,
    mlpHidden: 352,
    contextLength: 128,
    ropeTheta: 10000,
    normEps: 1e-5,
    tieEmbeddings: false,
  }),
  "byte-micro": preset({
    vocabSize: 259,
    dim: 32,
    layers: 2,
    heads: 2,
    kvHeads: 2,
    headDim: 16,
    mlpHidden: 88,
    contextLength: 32,
    ropeTheta: 10000,
    normEps: 1e-5,
    tieEmbeddings: false,
  }),
  "llama-3.2-1b": preset({
    vocabSize: 128256,
    dim: 2048,
    layers: 16,
    heads: 32,
    kvHeads: 8,
    headDim: 64,
    mlpHidden: 8192,
    contextLength: 131072,
    ropeTheta: 500000,
    normEps: 1e-5,
    tieEmbeddings: true,
  }),
  "llama-2-7b": preset({
    vocabSize: 32000,
    dim: 4096,
    layers: 32,
    heads: 32,
    kvHeads: 32,
    headDim: 128,
    mlpHidden: 11008,
    contextLength: 4096,
    ropeTheta: 10000,
    normEps: 1e-5,
    tieEmbeddings: false,
  }),
  "mistral-7b": preset({
    vocabSize: 32768,
    dim: 4096,
    layers: 32,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    mlpHidden: 14336,
    contextLength: 32768,
    ropeTheta: 1000000,
    normEps: 1e-5,
    tieEmbeddings: false,
  }),
  "gemma-2b": preset({
    vocabSize: 256000,
    dim: 2048,
    layers: 18,
    heads: 8,
    kvHeads: 1,
    headDim: 256,
    mlpHidden: 16384,
    mlpActivation: "gelu_tanh",
    contextLength: 8192,
    ropeTheta: 10000,
    normEps: 1e-6,
    tieEmbeddings: true,
    embeddingScale: Math.sqrt(2048),
  }),
});

function loraLayersOf(c: DecoderConfig): number[] {
  return c.loraLayers ?? Array.from({ length: c.layers }, (_, i) => i);
}

function validate(c: DecoderConfig): void {
  const bad = (msg: string): never => {
    throw new Error(`DecoderConfig: ${msg}`);
  };
  const ints = [
    "vocabSize",
    "dim",
    "layers",
    "heads",
    "kvHeads",
    "headDim",
    "mlpHidden",
    "contextLength",
  ] as const;
  for (const k of ints) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.heads % c.kvHeads !== 0) {
    bad(`heads ${c.heads} is not a multiple of kvHeads ${c.kvHeads}`);
  }
  if (c.headDim % 2 !== 0) bad(`headDim ${c.headDim} must be even (RoPE rotates pairs)`);
  if (!(c.ropeTheta > 0)) bad(`ropeTheta must be > 0, got ${c.ropeTheta}`);
  if (!(c.normEps > 0)) bad(`normEps must be > 0, got ${c.normEps}`);
  if (!(c.embeddingScale > 0)) bad(`embeddingScale must be > 0, got ${c.embeddingScale}`);
  if (c.mlpActivation !== "silu" && c.mlpActivation !== "gelu_tanh") {
    bad(`mlpActivation must be "silu" or "gelu_tanh", got ${JSON.stringify(c.mlpActivation)}`);
  }
  loraScale(c.lora);
  if (!(c.lora.dropout >= 0 && c.lora.dropout < 1)) {
    bad(`lora.dropout must be in [0, 1), got ${c.lora.dropout}`);
  }
  const seen = new Set<number>();
  for (const l of loraLayersOf(c)) {
    if (!Number.isInteger(l) || l < 0 || l >= c.layers) {
      bad(`loraLayers has ${l}, but layers are 0..${c.layers - 1}`);
    }
    if (seen.has(l)) bad(`loraLayers lists layer ${l} twice`);
    seen.add(l);
  }
}

// ---------------------------------------------------------------------------
// Parameters

type Init = "normal" | "normal_residual" | "ones";

interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
}

/** Base parameter names (Hugging Face LLaMA), PyTorch shapes and initialisers, in a fixed order. */
function baseSpec(c: DecoderConfig): ParamSpec[] {
  const qOut = c.heads * c.headDim;
  const kvOut = c.kvHeads * c.headDim;
  const spec: ParamSpec[] = [
    { name: "model.embed_tokens.weight", shape: [c.vocabSize, c.dim], init: "normal" },
  ];
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}`;
    spec.push(
      { name: `${p}.input_layernorm.weight`, shape: [c.dim], init: "ones" },
      { name: `${p}.self_attn.q_proj.weight`, shape: [qOut, c.dim], init: "normal" },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvOut, c.dim], init: "normal" },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvOut, c.dim], init: "normal" },
      { name: `${p}.self_attn.o_proj.weight`, shape: [c.dim, qOut], init: "normal_residual" },
      { name: `${p}.post_attention_layernorm.weight`, shape: [c.dim], init: "ones" },
      { name: `${p}.mlp.gate_proj.weight`, shape: [c.mlpHidden, c.dim], init: "normal" },
      { name: `${p}.mlp.up_proj.weight`, shape: [c.mlpHidden, c.dim], init: "normal" },
      { name: `${p}.mlp.down_proj.weight`, shape: [c.dim, c.mlpHidden], init: "normal_residual" },
    );
  }
  spec.push({ name: "model.norm.weight", shape: [c.dim], init: "ones" });
  if (!c.tieEmbeddings) {
    spec.push({ name: "lm_head.weight", shape: [c.vocabSize, c.dim], init: "normal" });
  }
  return spec;
}

/**
 * The base weights' names and shapes, in order, without allocating anything
 * (use it with the shape-only presets).
 *
 * @example
 * ```ts
 * import { DECODER_PRESETS, decoderWeightShapes } from "./decoder.ts";
 * const shapes = decoderWeightShapes(DECODER_PRESETS["llama-3.2-1b"]);
 * shapes.get("model.layers.0.self_attn.k_proj.weight"); // [512, 2048]
 * ```
 */
export function decoderWeightShapes(config: DecoderConfig): Map<string, number[]> {
  validate(config);
  return new Map(baseSpec(config).map((s) => [s.name, s.shape.slice()]));
}

/**
 * Parameter counts without allocating: base weights and LoRA A/B.
 *
 * @example
 * ```ts
 * import { DECODER_PRESETS, decoderParameterCount } from "./decoder.ts";
 * decoderParameterCount(DECODER_PRESETS["llama-3.2-1b"]).base; // 1235814400
 * ```
 */
export function decoderParameterCount(config: DecoderConfig): { base: number; lora: number } {
  validate(config);
  const base = baseSpec(config).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  const r = config.lora.rank;
  const perLayer = r * config.dim * 2 + config.heads * config.headDim * r +
    config.kvHeads * config.headDim * r;
  return { base, lora: perLayer * loraLayersOf(config).length };
}

function initialValues(s: ParamSpec, c: DecoderConfig, rng: Rng): Float32Array {
  const n = s.shape.reduce((a, b) => a * b, 1);
  if (s.init === "ones") return new Float32Array(n).fill(1);
  // GPT-2 / nanoGPT: residual output projections get std 0.02 / √(2 · layers).
  const std = s.init === "normal_residual" ? 0.02 / Math.sqrt(2 * c.layers) : 0.02;
  return truncatedNormal(n, { rng, std });
}

function weightEntry(weights: TensorMap, name: string): TensorData | undefined {
  return weights instanceof Map ? weights.get(name) : weights[name];
}

function checkedWeights(weights: TensorMap, spec: ParamSpec[]): void {
  const known = new Set(spec.map((s) => s.name));
  const names = weights instanceof Map ? [...weights.keys()] : Object.keys(weights);
  const missing = spec.filter((s) => !weightEntry(weights, s.name)).map((s) => s.name);
  const extra = names.filter((n) => !known.has(n));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `createDecoder: weights do not match the config (missing: ${
        missing.join(", ") || "none"
      }; unexpected: ${extra.join(", ") || "none"})`,
    );
  }
  for (const s of spec) {
    const w = weightEntry(weights, s.name)!;
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (w.shape.length !== s.shape.length || w.shape.some((d, i) => d !== s.shape[i])) {
      throw new Error(`weight "${s.name}": expected shape [${s.shape}], got [${w.shape}]`);
    }
    if (w.data.length !== n) {
      throw new Error(
        `weight "${s.name}": shape [${s.shape}] needs ${n} values, got ${w.data.length}`,
      );
    }
  }
}

interface LayerParams {
  inputNorm: Variable;
  q: LinearParams;
  k: LinearParams;
  v: LinearParams;
  o: LinearParams;
  postNorm: Variable;
  gate: LinearParams;
  up: LinearParams;
  down: LinearParams;
}

// ---------------------------------------------------------------------------
// Forward pieces

/**
 * Token embedding: rows `ids` [N] of `table` [V, dim] → [N, dim]. The forward
 * pass is `tf.gather`; the gradient w.r.t. the table is oneHot(ids)ᵀ · dy,
 * a plain matMul (the stock gather gradient does not run on wasm). No
 * gradient flows to `ids`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { embedTokens } from "./decoder.ts";
 * const e = embedTokens(tf.tensor1d([2, 0], "int32"), tf.tensor2d([[0, 1], [2, 3], [4, 5]])); // [[4, 5], [0, 1]]
 * ```
 */
export function embedTokens(ids: Tensor1D, table: Tensor2D): Tensor2D {
  if (ids.dtype !== "int32") throw new Error(`embedTokens: ids must be int32, got ${ids.dtype}`);
  const vocab = table.shape[0];
  // The ids reach the gradient through `save`: a closure would see them disposed by an
  // enclosing tidy before the backward pass runs.
  const f = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [t, i] = args as [Tensor, Tensor1D];
    (args[2] as tf.GradSaveFunc)([i]);
    return {
      value: tf.gather(t, i),
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => [
        tf.matMul(tf.transpose(tf.oneHot(saved[0] as Tensor1D, vocab)), dy as Tensor),
        tf.zerosLike(saved[0]),
      ],
    };
  });
  return f(table, ids) as Tensor2D;
}

/**
 * RoPE position of every token of a left-padded batch: the number of real
 * tokens before it, `max(cumsum(mask) − 1, 0)` (pads get 0). `mask` is
 * [B, T], 1 = real token.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { positionsFromMask } from "./decoder.ts";
 * const p = positionsFromMask(tf.tensor2d([[0, 0, 1, 1], [1, 1, 1, 1]])); // [[0, 0, 0, 1], [0, 1, 2, 3]]
 * ```
 */
export function positionsFromMask(mask: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.relu(tf.sub(tf.cumsum(tf.cast(mask, "float32"), 1), 1)) as Tensor2D);
}

/**
 * RoPE tables for positions [B, T]: cos and sin of position · θ^(−2i/headDim),
 * i = 0..headDim/2 − 1, each repeated for the two halves of a head (Hugging
 * Face's rotate-half layout), shaped [B, T, 1, headDim] to broadcast over heads.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { ropeTables } from "./decoder.ts";
 * const { cos, sin } = ropeTables(tf.tensor2d([[0, 1, 2]]), { headDim: 4, theta: 10000 });
 * ```
 */
export function ropeTables(
  positions: Tensor2D,
  options: { headDim: number; theta: number },
): { cos: Tensor4D; sin: Tensor4D } {
  const { headDim, theta } = options;
  const half = headDim / 2;
  const invFreq = Float32Array.from({ length: half }, (_, i) => theta ** (-(2 * i) / headDim));
  return tf.tidy(() => {
    const [b, t] = positions.shape;
    const angles = tf.mul(tf.reshape(positions, [b, t, 1]), tf.tensor1d(invFreq));
    const both = (x: Tensor) => tf.reshape(tf.concat([x, x], 2), [b, t, 1, headDim]) as Tensor4D;
    return { cos: both(tf.cos(angles)), sin: both(tf.sin(angles)) };
  });
}

/**
 * The signed permutation R [d, d] with x·R = rotateHalf(x) = [−x₂, x₁] for rows
 * x = [x₁, x₂] (halves of width d/2). Cached per width.
 */
const rotateHalfMatrices = new Map<number, Float32Array>();
function rotateHalfMatrix(d: number): Float32Array {
  let r = rotateHalfMatrices.get(d);
  if (!r) {
    const half = d / 2;
    r = new Float32Array(d * d);
    for (let j = 0; j < half; j++) {
      r[(j + half) * d + j] = -1; // output j < half takes −x[j + half]
      r[j * d + j + half] = 1; // output j + half takes x[j]
    }
    rotateHalfMatrices.set(d, r);
  }
  return r;
}

/**
 * Rotate heads x [B, T, H, headDim] by RoPE: x·cos + rotateHalf(x)·sin, with
 * rotateHalf([x₁, x₂]) = [−x₂, x₁] over the two halves of the head. The
 * rotation is one 2-D matMul of the rows [B·T·H, headDim] by a signed
 * permutation matrix: exact (each output is one input, negated or not), and on
 * wasm several times faster, forward and backward, than slice + concat (whose
 * gradients are pads and splits of 4-D tensors). No stridedSlice.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { applyRope, ropeTables } from "./decoder.ts";
 * const x = tf.ones([1, 3, 2, 4]) as tf.Tensor4D;
 * const tables = ropeTables(tf.tensor2d([[0, 1, 2]]), { headDim: 4, theta: 10000 });
 * const y = applyRope(x, tables); // position 0 is unchanged
 * ```
 */
export function applyRope(
  x: Tensor4D,
  tables: { cos: Tensor4D; sin: Tensor4D },
): Tensor4D {
  const [b, t, h, d] = x.shape;
  return tf.tidy(() => {
    const r = tf.tensor2d(rotateHalfMatrix(d), [d, d]);
    const rotated = tf.reshape(tf.matMul(tf.reshape(x, [b * t * h, d]), r), [b, t, h, d]);
    return tf.add(tf.mul(x, tables.cos), tf.mul(rotated, tables.sin)) as Tensor4D;
  });
}

/**
 * The additive attention bias [B, 1, Tq, Tk] of queries at absolute
 * positions `past..past+Tq−1` over keys `0..Tk−1`: 0 where the key is a real
 * token (`keyMask` [B, Tk] = 1) at or before the query, −1e9 elsewhere.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { attentionBias } from "./decoder.ts";
 * const bias = attentionBias(tf.tensor2d([[0, 1, 1]]), { queries: 3 }); // [1, 1, 3, 3]
 * ```
 */
export function attentionBias(keyMask: Tensor2D, options: { queries: number }): Tensor4D {
  const [b, tk] = keyMask.shape;
  const tq = options.queries;
  const past = tk - tq;
  if (past < 0) throw new Error(`attentionBias: ${tq} queries but only ${tk} keys`);
  const causal = new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) {
    for (let j = 0; j <= past + i; j++) causal[i * tk + j] = 1;
  }
  return tf.tidy(() => {
    const allowed = tf.mul(
      tf.reshape(tf.cast(keyMask, "float32"), [b, 1, 1, tk]),
      tf.tensor4d(causal, [1, 1, tq, tk]),
    );
    return tf.mul(tf.sub(allowed, 1), 1e9) as Tensor4D;
  });
}

/**
 * Scaled dot-product attention with grouped key/value heads. `q` is
 * [B, Tq, H, d] (RoPE applied), `kT` the keys as [B, Hkv, d, Tk] and `v`
 * [B, Hkv, Tk, d]; query head h uses key/value head ⌊h / (H/Hkv)⌋ (Hugging
 * Face's `repeat_kv`). The H/Hkv query heads of a group are folded into the
 * token axis, so each group is one batched matMul against its K and V (no
 * tiling); scores, softmax and weighted sum are one op with its own gradient
 * (`attentionCore`). `bias` [B, 1, Tq, Tk] is added to the scores. Returns
 * [B·Tq, H·d].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { attentionBias, groupedQueryAttention } from "./decoder.ts";
 * const q = tf.randomNormal([1, 3, 4, 8]) as tf.Tensor4D; // 4 query heads
 * const kT = tf.randomNormal([1, 2, 8, 3]) as tf.Tensor4D; // 2 key/value heads
 * const v = tf.randomNormal([1, 2, 3, 8]) as tf.Tensor4D;
 * const bias = attentionBias(tf.ones([1, 3]), { queries: 3 });
 * const y = groupedQueryAttention({ q, kT, v }, { bias }); // [3, 32]
 * ```
 */
export function groupedQueryAttention(
  qkv: { q: Tensor4D; kT: Tensor4D; v: Tensor4D },
  options: { bias: Tensor4D },
): Tensor2D {
  const { q, kT, v } = qkv;
  const [b, tq, h, d] = q.shape;
  const [bk, hkv, dk, tk] = kT.shape;
  if (bk !== b || dk !== d || h % hkv !== 0) {
    throw new Error(`attention: q [${q.shape}] does not fit kᵀ [${kT.shape}]`);
  }
  if (v.shape[0] !== b || v.shape[1] !== hkv || v.shape[2] !== tk || v.shape[3] !== d) {
    throw new Error(`attention: v [${v.shape}] does not fit kᵀ [${kT.shape}]`);
  }
  const g = h / hkv;
  return tf.tidy(() => {
    // [B, Tq, Hkv, g, d] → [B, Hkv, g, Tq, d] → [B·Hkv, g·Tq, d].
    const qg = tf.reshape(tf.transpose(tf.reshape(q, [b, tq, hkv, g, d]), [0, 2, 3, 1, 4]), [
      b * hkv,
      g * tq,
      d,
    ]) as Tensor3D;
    const out = attentionCore(
      qg,
      tf.reshape(kT, [b * hkv, d, tk]) as Tensor3D,
      tf.reshape(v, [b * hkv, tk, d]) as Tensor3D,
      {
        scale: 1 / Math.sqrt(d),
        // Rows (group j, member r, query t) are head h = j·g + r: the bias is [B, 1, Tq, Tk].
        addBias: (scores) =>
          tf.reshape(tf.add(tf.reshape(scores, [b, h, tq, tk]), options.bias), [
            b * hkv,
            g * tq,
            tk,
          ]) as Tensor3D,
      },
    );
    // [B, Hkv, g, Tq, d] → [B, Tq, Hkv, g, d] → [B·Tq, H·d]
    return tf.reshape(tf.transpose(tf.reshape(out, [b, hkv, g, tq, d]), [0, 3, 1, 2, 4]), [
      b * tq,
      h * d,
    ]) as Tensor2D;
  });
}

/**
 * The gated MLP of LLaMA: down(act(gate(x)) ⊙ up(x)), with act = SiLU
 * (SwiGLU) or tanh-GELU (GeGLU, Gemma). x is [N, dim].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { gatedMlp } from "./decoder.ts";
 * const p = (out: number, inp: number) => ({ weight: tf.variable(tf.ones([out, inp])) });
 * const y = gatedMlp(tf.ones([1, 2]) as tf.Tensor2D, {
 *   gate: p(3, 2),
 *   up: p(3, 2),
 *   down: p(2, 3),
 * }, { activation: "silu" });
 * ```
 */
export function gatedMlp(
  x: Tensor2D,
  p: { gate: LinearParams; up: LinearParams; down: LinearParams },
  options: { activation: MlpActivation },
): Tensor2D {
  return tf.tidy(() => {
    const g = linear(x, p.gate);
    const act = options.activation === "silu" ? silu(g) : geluTanh(g);
    return linear(tf.mul(act, linear(x, p.up)) as Tensor2D, p.down);
  });
}

// ---------------------------------------------------------------------------
// The model

/**
 * Keys and values of the tokens seen so far, per layer, for incremental
 * decoding: kᵀ [B, Hkv, headDim, T] (RoPE applied) and v [B, Hkv, T, headDim],
 * plus the attention mask [B, T] of those tokens. Owned by whoever holds it;
 * free it with {@link disposeKvCache} (or pass it to {@link Decoder.extend},
 * which consumes it).
 */
export interface KvCache {
  /** One entry per layer. */
  readonly layers: readonly { kT: Tensor4D; v: Tensor4D }[];
  /** Attention mask [B, T] (float32, 1 = real token) of the cached tokens. */
  readonly mask: Tensor2D;
}

/**
 * Free the tensors of a cache.
 *
 * @example
 * ```ts ignore
 * const { logits, cache } = model.extend(ids, { attentionMask });
 * disposeKvCache(cache);
 * ```
 */
export function disposeKvCache(cache: KvCache): void {
  for (const l of cache.layers) tf.dispose([l.kT, l.v]);
  cache.mask.dispose();
}

/** Options of {@link Decoder.logits}. */
export interface DecoderForwardOptions {
  /** Training mode: LoRA dropout on (needs `seed` when dropout > 0). */
  training: boolean;
  /** Base seed of the LoRA dropout masks; each site derives its own. */
  seed?: number;
  /** [B, T], 1 = real token, 0 = left padding; absent = every token is real. */
  attentionMask?: Tensor2D;
  /** Return only the last position's logits, [B, 1, V] (generation). */
  lastOnly?: boolean;
  /**
   * Input embeddings put before the tokens: [P, dim] (every row) or [B, P, dim], in the
   * embedding table's space (scaled by `embeddingScale` with the tokens), always attended, at
   * RoPE positions 0..P−1. Differentiable. Logits are returned for the tokens only. Absent or
   * P = 0: no prefix (bit-identical to leaving it out).
   */
  prefix?: Tensor;
}

/** Options of {@link Decoder.features}. */
export interface DecoderFeatureOptions {
  /** [B, T], 1 = real token, 0 = left padding; absent = every token is real. */
  attentionMask?: Tensor2D;
  /** [B, T], 1 at the positions averaged; absent = the attention mask. */
  poolMask?: Tensor2D;
}

/** A decoder instance: forward pass, incremental decoding, LoRA sites and named base weights. */
export interface Decoder {
  /** The configuration it was built with. */
  readonly config: DecoderConfig;
  /**
   * Next-token logits [B, T, V] for int32 ids [B, T] (token positions only, also with a
   * `prefix`).
   */
  logits(ids: Tensor2D, options: DecoderForwardOptions): Tensor3D;
  /**
   * Inference with a key/value cache: run the new tokens `ids` [B, Tn] after
   * the cached ones and return the logits of the last new position [B, V] and
   * the extended cache. `attentionMask` [B, Tn] covers the new tokens only
   * (default all real). The cache passed in is consumed (disposed). `prefix`
   * (as in {@link DecoderForwardOptions.prefix}) only without a cache: it starts
   * the sequence, and the returned cache holds it.
   */
  extend(
    ids: Tensor2D,
    options?: { attentionMask?: Tensor2D; cache?: KvCache; prefix?: Tensor },
  ): { logits: Tensor2D; cache: KvCache };
  /**
   * Frozen sequence features [B, dim]: the final hidden state (after the last RMSNorm, the LM
   * head's input) of the base model — LoRA bypassed, no prefix, evaluation mode — averaged
   * over the positions where `poolMask` is 1 (a row with none gives zeros). Attention is
   * causal, so the features of a prompt's positions do not depend on tokens after it.
   */
  features(ids: Tensor2D, options?: DecoderFeatureOptions): Tensor2D;
  /** LoRA sites in the fixed order layers.0.attn.q, layers.0.attn.v, layers.1.attn.q, … */
  loraSites(): LoraSite[];
  /** Base (non-LoRA) weights by Hugging Face name, in a fixed order. */
  baseWeights(): Map<string, Variable>;
  /** Make the base weights trainable (pre-training) or frozen (continual learning; the default). */
  setBaseTrainable(trainable: boolean): void;
  /** Parameter counts: base weights and LoRA A/B. */
  parameterCount(): { base: number; lora: number };
  /** Free every variable. */
  dispose(): void;
}

/**
 * Build a decoder. Base weights come from `weights` when given (every name
 * required, shapes checked), otherwise from a truncated normal (std 0.02;
 * the residual output projections `o_proj` and `down_proj` std 0.02/√(2·layers))
 * and ones for the RMSNorms. LoRA A matrices are drawn from their own stream,
 * split off `rng` first, so they are the same whether the base is random or
 * loaded. Base weights start frozen (`trainable = false`).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../random.ts";
 * import { createDecoder, DECODER_PRESETS } from "./decoder.ts";
 * const lm = createDecoder(DECODER_PRESETS["byte-micro"], { rng: new Rng(0) });
 * const ids = tf.tensor2d([[256, 104, 105]], [1, 3], "int32");
 * const logits = lm.logits(ids, { training: false }); // [1, 3, 259]
 * tf.dispose([ids, logits]);
 * lm.dispose();
 * ```
 */
export function createDecoder(
  config: DecoderConfig,
  options: { rng: Rng; weights?: TensorMap },
): Decoder {
  const c: DecoderConfig = {
    ...config,
    lora: { ...config.lora },
    loraLayers: [...loraLayersOf(config)].sort((a, b) => a - b),
  };
  validate(c);
  const loraRng = new Rng(options.rng.seed());
  const baseRng = new Rng(options.rng.seed());
  const scope = uniqueScope("decoder");
  const spec = baseSpec(c);
  if (options.weights) checkedWeights(options.weights, spec);

  const base = new Map<string, Variable>();
  const sites: LoraSite[] = [];
  try {
    for (const s of spec) {
      const data = options.weights
        ? weightEntry(options.weights, s.name)!.data
        : initialValues(s, c, baseRng);
      base.set(
        s.name,
        makeVariable(data, s.shape, { name: `${scope}/${s.name}`, trainable: false }),
      );
    }
    for (const i of c.loraLayers!) {
      for (const [p, heads] of [["q", c.heads], ["v", c.kvHeads]] as const) {
        sites.push(createLoraSite(`layers.${i}.attn.${p}`, {
          dIn: c.dim,
          dOut: heads * c.headDim,
          lora: c.lora,
          rng: loraRng,
          scope,
        }));
      }
    }
  } catch (err) {
    for (const v of base.values()) v.dispose();
    for (const s of sites) tf.dispose([s.a, s.b]);
    throw err;
  }

  const w = (name: string) => base.get(name)!;
  const siteByName = new Map(sites.map((s) => [s.name, s]));
  const siteIndex = new Map(sites.map((s, i) => [s.name, i]));
  const lin = (name: string, site?: string): LinearParams => ({
    weight: w(`${name}.weight`),
    lora: site ? siteByName.get(site) : undefined,
  });
  const layers: LayerParams[] = Array.from({ length: c.layers }, (_, i) => {
    const p = `model.layers.${i}`;
    return {
      inputNorm: w(`${p}.input_layernorm.weight`),
      q: lin(`${p}.self_attn.q_proj`, `layers.${i}.attn.q`),
      k: lin(`${p}.self_attn.k_proj`),
      v: lin(`${p}.self_attn.v_proj`, `layers.${i}.attn.v`),
      o: lin(`${p}.self_attn.o_proj`),
      postNorm: w(`${p}.post_attention_layernorm.weight`),
      gate: lin(`${p}.mlp.gate_proj`),
      up: lin(`${p}.mlp.up_proj`),
      down: lin(`${p}.mlp.down_proj`),
    };
  });
  // The same layers without their LoRA sites (frozen features).
  const baseLayers: LayerParams[] = layers.map((p) => ({
    ...p,
    q: { weight: p.q.weight },
    v: { weight: p.v.weight },
  }));
  const embedding = w("model.embed_tokens.weight") as Tensor as Tensor2D;
  const head = c.tieEmbeddings ? embedding : w("lm_head.weight") as Tensor as Tensor2D;
  const scale = loraScale(c.lora);
  const eps = c.normEps;
  let disposed = false;

  /** One decoder layer on rows h [B·Tn, dim]; appends this layer's keys/values to `kv`. */
  function layer(
    h: Tensor2D,
    p: LayerParams,
    ctx: {
      batch: number;
      queries: number;
      lora: LoraForward;
      rope: { cos: Tensor4D; sin: Tensor4D };
      bias: Tensor4D;
      past?: { kT: Tensor4D; v: Tensor4D };
      kv: { kT: Tensor4D; v: Tensor4D }[];
    },
  ): Tensor2D {
    const { batch: b, queries: t, lora } = ctx;
    const d = c.headDim;
    const seedOf = (site?: LoraSite) =>
      site ? siteSeed(lora.seed, siteIndex.get(site.name)!) : undefined;
    const x = rmsNorm(h, p.inputNorm, { eps });
    const q = linear(x, p.q, { lora, siteSeed: seedOf(p.q.lora) });
    const k = linear(x, p.k);
    const v = linear(x, p.v, { lora, siteSeed: seedOf(p.v.lora) });
    const qh = applyRope(tf.reshape(q, [b, t, c.heads, d]), ctx.rope);
    const kh = applyRope(tf.reshape(k, [b, t, c.kvHeads, d]), ctx.rope);
    let kT = tf.transpose(kh, [0, 2, 3, 1]) as Tensor4D; // [B, Hkv, d, Tn]
    let vh = tf.transpose(tf.reshape(v, [b, t, c.kvHeads, d]), [0, 2, 1, 3]) as Tensor4D;
    if (ctx.past) {
      kT = tf.concat([ctx.past.kT, kT], 3);
      vh = tf.concat([ctx.past.v, vh], 2);
    }
    ctx.kv.push({ kT, v: vh });
    const a = groupedQueryAttention({ q: qh, kT, v: vh }, { bias: ctx.bias });
    h = tf.add(h, linear(a, p.o));
    const m = gatedMlp(rmsNorm(h, p.postNorm, { eps }), p, { activation: c.mlpActivation });
    return tf.add(h, m);
  }

  /** A prefix [P, dim] / [B, P, dim] checked against the batch; null when absent or empty. */
  function checkedPrefix(prefix: Tensor | undefined, b: number): Tensor | null {
    if (prefix === undefined) return null;
    const ok = (prefix.rank === 2 || (prefix.rank === 3 && prefix.shape[0] === b)) &&
      prefix.shape[prefix.rank - 1] === c.dim && prefix.dtype === "float32";
    if (!ok) {
      throw new Error(
        `Decoder: prefix must be float32 [P, ${c.dim}] or [${b}, P, ${c.dim}], got ${prefix.dtype} [${prefix.shape}]`,
      );
    }
    return prefix.shape[prefix.rank - 2] > 0 ? prefix : null;
  }

  /**
   * The shared forward pass: the final-normed hidden rows of the new tokens [B·rows, dim]
   * (prefix rows dropped), and every layer's keys/values.
   */
  function hidden(
    ids: Tensor2D,
    opts: {
      training: boolean;
      seed?: number;
      mask: Tensor2D;
      cache?: KvCache;
      lastOnly: boolean;
      prefix?: Tensor;
      layers?: LayerParams[];
    },
  ): {
    h: Tensor2D;
    rows: number;
    kv: { kT: Tensor4D; v: Tensor4D }[];
    mask: Tensor2D;
  } {
    if (disposed) throw new Error("Decoder: the model has been disposed");
    if (ids.rank !== 2 || ids.dtype !== "int32") {
      throw new Error(`Decoder: expected int32 ids [B, T], got ${ids.dtype} [${ids.shape}]`);
    }
    const [b, t] = ids.shape;
    if (opts.mask.shape[0] !== b || opts.mask.shape[1] !== t) {
      throw new Error(
        `Decoder: attention mask [${opts.mask.shape}] does not match ids [${b}, ${t}]`,
      );
    }
    if (opts.cache && opts.cache.mask.shape[0] !== b) {
      throw new Error(
        `Decoder: cache batch ${opts.cache.mask.shape[0]} does not match ids batch ${b}`,
      );
    }
    const prefix = checkedPrefix(opts.prefix, b);
    if (prefix && opts.cache) {
      throw new Error("Decoder: a prefix starts a sequence; it cannot follow a key/value cache");
    }
    // Query rows: the prefix's P rows, then the T tokens.
    const p = prefix ? prefix.shape[prefix.rank - 2] : 0;
    const tq = p + t;
    const lora: LoraForward = {
      scale,
      dropout: c.lora.dropout,
      training: opts.training,
      seed: opts.seed,
    };
    let newMask = tf.cast(opts.mask, "float32") as Tensor2D;
    if (prefix) newMask = tf.concat([tf.ones([b, p]), newMask], 1);
    const fullMask = opts.cache ? tf.concat([opts.cache.mask, newMask], 1) as Tensor2D : newMask;
    const tk = fullMask.shape[1];
    const positions = tf.slice(positionsFromMask(fullMask), [0, tk - tq], [b, tq]) as Tensor2D;
    const rope = ropeTables(positions, { headDim: c.headDim, theta: c.ropeTheta });
    const bias = attentionBias(fullMask, { queries: tq });
    let h = embedTokens(tf.reshape(ids, [b * t]) as Tensor1D, embedding);
    if (prefix) {
      const rowsOf = prefix.rank === 3
        ? prefix
        : tf.mul(tf.ones([b, 1, 1]), tf.reshape(prefix, [1, p, c.dim]));
      h = tf.reshape(tf.concat([rowsOf, tf.reshape(h, [b, t, c.dim])], 1), [b * tq, c.dim]);
    }
    if (c.embeddingScale !== 1) h = tf.mul(h, c.embeddingScale);
    const kv: { kT: Tensor4D; v: Tensor4D }[] = [];
    (opts.layers ?? layers).forEach((lp, i) => {
      h = layer(h, lp, {
        batch: b,
        queries: tq,
        lora,
        rope,
        bias,
        past: opts.cache?.layers[i],
        kv,
      });
    });
    if (prefix) {
      h = tf.reshape(tf.slice(tf.reshape(h, [b, tq, c.dim]), [0, p, 0], [b, t, c.dim]), [
        b * t,
        c.dim,
      ]);
    }
    let rows = t;
    if (opts.lastOnly) {
      h = tf.reshape(tf.slice(tf.reshape(h, [b, t, c.dim]), [0, t - 1, 0], [b, 1, c.dim]), [
        b,
        c.dim,
      ]);
      rows = 1;
    }
    h = rmsNorm(h, w("model.norm.weight"), { eps });
    return { h, rows, kv, mask: fullMask };
  }

  /** Logits [B, rows, V] of the new tokens, and every layer's keys/values. */
  function forward(
    ids: Tensor2D,
    opts: {
      training: boolean;
      seed?: number;
      mask: Tensor2D;
      cache?: KvCache;
      lastOnly: boolean;
      prefix?: Tensor;
    },
  ): { logits: Tensor3D; kv: { kT: Tensor4D; v: Tensor4D }[]; mask: Tensor2D } {
    const { h, rows, kv, mask } = hidden(ids, opts);
    const logits = tf.matMul(h, tf.transpose(head));
    return { logits: tf.reshape(logits, [ids.shape[0], rows, c.vocabSize]), kv, mask };
  }

  return {
    config: c,
    logits(ids, opts) {
      return tf.tidy(() => {
        const mask = opts.attentionMask ?? tf.ones(ids.shape) as Tensor2D;
        return forward(ids, {
          training: opts.training,
          seed: opts.seed,
          mask,
          lastOnly: opts.lastOnly ?? false,
          prefix: opts.prefix,
        }).logits;
      });
    },
    extend(ids, opts = {}) {
      const out = tf.tidy(() => {
        const mask = opts.attentionMask ?? tf.ones(ids.shape) as Tensor2D;
        const r = forward(ids, {
          training: false,
          mask,
          cache: opts.cache,
          lastOnly: true,
          prefix: opts.prefix,
        });
        const [b, , v] = r.logits.shape;
        return {
          logits: tf.reshape(r.logits, [b, v]) as Tensor2D,
          layers: r.kv,
          mask: r.mask,
        };
      });
      if (opts.cache) disposeKvCache(opts.cache);
      return { logits: out.logits, cache: { layers: out.layers, mask: out.mask } };
    },
    features(ids, opts = {}) {
      return tf.tidy(() => {
        const mask = opts.attentionMask ?? tf.ones(ids.shape) as Tensor2D;
        const [b, t] = ids.shape;
        const pool = tf.cast(opts.poolMask ?? mask, "float32");
        if (pool.shape.length !== 2 || pool.shape[0] !== b || pool.shape[1] !== t) {
          throw new Error(
            `Decoder.features: poolMask [${pool.shape}] does not match ids [${b}, ${t}]`,
          );
        }
        const { h } = hidden(ids, { training: false, mask, lastOnly: false, layers: baseLayers });
        const weighted = tf.mul(tf.reshape(h, [b, t, c.dim]), tf.reshape(pool, [b, t, 1]));
        const count = tf.maximum(tf.sum(pool, 1, true), 1);
        return tf.div(tf.sum(weighted, 1), count) as Tensor2D;
      });
    },
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
      for (const s of sites) tf.dispose([s.a, s.b]);
    },
  };
}

/**
 * The part of a decoder a continual-learning method sees: its LoRA sites in
 * depth order, and no head variables (the LM head is frozen base).
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { createDecoder, DECODER_PRESETS, lmAdaptedModel } from "./decoder.ts";
 * const lm = createDecoder(DECODER_PRESETS["byte-micro"], { rng: new Rng(0) });
 * lmAdaptedModel(lm).loraSites().length; // 4
 * lm.dispose();
 * ```
 */
export function lmAdaptedModel(decoder: Decoder): AdaptedModel {
  return {
    loraSites: () => decoder.loraSites(),
    headVariables: () => [],
    baseVariables: () => [...decoder.baseWeights().values()],
  };
}
