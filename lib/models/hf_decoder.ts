/**
 * LLaMA-family decoders from Hugging Face checkpoint directories.
 *
 * A directory holds `config.json` (a `LlamaConfig` or `MistralConfig`),
 * `model.safetensors` or shards listed in `model.safetensors.index.json`,
 * and `tokenizer.json` (plus `tokenizer_config.json`, read by
 * `loadHfTokenizer`). The project's decoder (`decoder.ts`) already uses the
 * `transformers` LLaMA tensor names and layouts — `model.embed_tokens.weight`,
 * `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight`,
 * `model.layers.{i}.mlp.{gate,up,down}_proj.weight`,
 * `model.layers.{i}.{input,post_attention}_layernorm.weight`,
 * `model.norm.weight`, `lm_head.weight` — and the same rotate-half RoPE, so
 * tensors load unrenamed. Skipped: the `rotary_emb.inv_freq` buffers older
 * checkpoints carry, and `lm_head.weight` when `tie_word_embeddings` is true
 * (the embedding is used, as `transformers` does). BF16/F16 tensors are
 * widened to float32.
 *
 * config.json → {@link DecoderConfig}: vocab_size, hidden_size → dim,
 * num_hidden_layers → layers, num_attention_heads → heads,
 * num_key_value_heads → kvHeads (default heads), head_dim (default
 * hidden_size / heads), intermediate_size → mlpHidden, rms_norm_eps →
 * normEps, rope_theta → ropeTheta (default 10000), tie_word_embeddings
 * (default false), max_position_embeddings → contextLength. Refused, with the
 * field named: other `model_type`s, `hidden_act` other than `silu`,
 * `attention_bias` / `mlp_bias`, and RoPE scalings that change short-context
 * behaviour other than `llama3`.
 *
 * Not modelled, and recorded in `notes` with their size: LLaMA-3.1/3.2's
 * `rope_scaling: { rope_type: "llama3" }` (it slows the low rotary
 * frequencies; for Llama-3.2-1B 17 of 32 frequency pairs differ — see
 * {@link llama3InverseFrequencies}, which computes the scaled frequencies,
 * and {@link ropeScalingNote}), dynamic NTK scaling (only beyond
 * `max_position_embeddings`), and Mistral's sliding window (only beyond
 * `sliding_window` tokens). Everything else matches `transformers` to
 * float32 rounding (tested against a plain-TypeScript reference, 1e-4).
 *
 * Memory: {@link loadHfDecoder} states parameters × 4 bytes before reading
 * any weights and refuses a model above `maxBytes` (see
 * `safetensors_index.ts`: half the machine's memory with
 * `--allow-sys=systemMemoryInfo`, else 8 GiB). Llama-3.2-1B: 1,235,814,400
 * parameters = 4.60 GiB as float32 — above the wasm backend's 4 GiB heap, so
 * it needs the tensorflow backend (or cpu).
 *
 * @module
 */

import { join } from "@std/path";
import type { Rng } from "../random.ts";
import { type HfTokenizer, loadHfTokenizer } from "../text/hf_tokenizer.ts";
import type { LoraConfig } from "./backbone.ts";
import {
  createDecoder,
  type Decoder,
  type DecoderConfig,
  decoderParameterCount,
  decoderWeightShapes,
  DEFAULT_DECODER_LORA,
} from "./decoder.ts";
import { checkModelMemory, loadCheckpointWeights, type MemoryLimit } from "./safetensors_index.ts";
import type { TensorData } from "./safetensors.ts";

/** The fields of a Hugging Face `LlamaConfig` (config.json) read here. */
export interface HfDecoderConfigJson {
  /** `"llama"` or `"mistral"` (absent: treated as llama, noted). */
  model_type?: string;
  /** Rows of the embedding. */
  vocab_size: number;
  /** Width. */
  hidden_size: number;
  /** Decoder layers. */
  num_hidden_layers: number;
  /** Query heads. */
  num_attention_heads: number;
  /** Key/value heads (default num_attention_heads). */
  num_key_value_heads?: number;
  /** Head width (default hidden_size / num_attention_heads). */
  head_dim?: number;
  /** SwiGLU width. */
  intermediate_size: number;
  /** RMSNorm epsilon (default 1e-6, LlamaConfig's default). */
  rms_norm_eps?: number;
  /** RoPE base (default 10000). */
  rope_theta?: number;
  /** RoPE scaling (null = none). */
  rope_scaling?: Record<string, unknown> | null;
  /** LM head = embedding (default false). */
  tie_word_embeddings?: boolean;
  /** Context length (default 2048). */
  max_position_embeddings?: number;
  /** `"silu"` (default). */
  hidden_act?: string;
  /** Biases on q/k/v/o (must be false). */
  attention_bias?: boolean;
  /** Biases in the MLP (must be false). */
  mlp_bias?: boolean;
  /** Mistral's sliding window (not modelled; noted). */
  sliding_window?: number | null;
}

function field(
  o: Record<string, unknown>,
  key: string,
  source: string,
  options: { integer: boolean; fallback?: number },
): number {
  const v = o[key] ?? options.fallback;
  const ok = typeof v === "number" && Number.isFinite(v) && v > 0 &&
    (!options.integer || Number.isInteger(v));
  if (!ok) {
    throw new Error(
      `${source}: field "${key}" must be a ${
        options.integer ? "positive integer" : "number > 0"
      }, ` +
        `got ${JSON.stringify(o[key])}`,
    );
  }
  return v as number;
}

/**
 * LLaMA-3's RoPE frequency scaling (`rope_scaling.rope_type: "llama3"`, as
 * `transformers`' `_compute_llama3_parameters`): the inverse frequencies
 * θ^(−2i/d) with wavelength 2π/f above `original_max_position_embeddings /
 * low_freq_factor` divided by `factor`, those below
 * `original_max_position_embeddings / high_freq_factor` kept, and those in
 * between interpolated. Returns the scaled and the plain frequencies.
 *
 * @example
 * ```ts
 * import { llama3InverseFrequencies } from "./hf_decoder.ts";
 * const { scaled, plain } = llama3InverseFrequencies({
 *   headDim: 64,
 *   theta: 500000,
 *   scaling: { factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
 * });
 * console.log(plain[0] === scaled[0], plain[31] / scaled[31]); // true 32
 * ```
 */
export function llama3InverseFrequencies(
  options: { headDim: number; theta: number; scaling: Record<string, unknown> },
): { scaled: Float64Array; plain: Float64Array } {
  const s = options.scaling;
  const num = (k: string) => {
    const v = s[k];
    if (typeof v !== "number" || !(v > 0)) {
      throw new Error(`rope_scaling: field "${k}" must be a number > 0, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const factor = num("factor");
  const low = num("low_freq_factor");
  const high = num("high_freq_factor");
  const old = num("original_max_position_embeddings");
  const half = options.headDim / 2;
  const plain = Float64Array.from(
    { length: half },
    (_, i) => options.theta ** (-(2 * i) / options.headDim),
  );
  const scaled = plain.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < old / high) return f;
    if (wavelen > old / low) return f / factor;
    const smooth = (old / wavelen - low) / (high - low);
    return (1 - smooth) * f / factor + smooth * f;
  });
  return { scaled, plain };
}

/**
 * A one-line account of a RoPE scaling the decoder does not model: how many
 * frequency pairs differ and the largest phase difference at positions 128
 * and 2048.
 *
 * @example
 * ```ts
 * import { ropeScalingNote } from "./hf_decoder.ts";
 * console.log(ropeScalingNote({
 *   headDim: 64,
 *   theta: 500000,
 *   scaling: { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
 * }));
 * ```
 */
export function ropeScalingNote(
  options: { headDim: number; theta: number; scaling: Record<string, unknown> },
): string {
  const { scaled, plain } = llama3InverseFrequencies(options);
  let changed = 0;
  let maxDelta = 0;
  for (let i = 0; i < plain.length; i++) {
    const d = Math.abs(plain[i] - scaled[i]);
    if (d > 0) changed++;
    maxDelta = Math.max(maxDelta, d);
  }
  return `rope_scaling llama3 (factor ${options.scaling.factor}) is not modelled: ${changed} of ` +
    `${plain.length} rotary frequency pairs differ from the checkpoint's; the largest phase ` +
    `difference is ${(128 * maxDelta).toFixed(3)} rad at position 128 and ` +
    `${(2048 * maxDelta).toFixed(2)} rad at position 2048`;
}

/**
 * The project's {@link DecoderConfig} for a Hugging Face LLaMA/Mistral
 * config.json, and notes on what the decoder does not model. Errors name
 * `source` and the field.
 *
 * @example
 * ```ts
 * import { decoderConfigFromHf } from "./hf_decoder.ts";
 * const { config, notes } = decoderConfigFromHf({
 *   model_type: "llama",
 *   vocab_size: 128256,
 *   hidden_size: 2048,
 *   num_hidden_layers: 16,
 *   num_attention_heads: 32,
 *   num_key_value_heads: 8,
 *   head_dim: 64,
 *   intermediate_size: 8192,
 *   rms_norm_eps: 1e-5,
 *   rope_theta: 500000,
 *   tie_word_embeddings: true,
 *   max_position_embeddings: 131072,
 *   rope_scaling: { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
 * }, { source: "llama-3.2-1b/config.json" });
 * console.log(config.kvHeads, notes.length); // 8 1
 * ```
 */
export function decoderConfigFromHf(
  json: unknown,
  options: { source: string; lora?: LoraConfig; loraLayers?: number[] },
): { config: DecoderConfig; notes: string[] } {
  const source = options.source;
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`${source}: expected a LLaMA config object, got ${JSON.stringify(json)}`);
  }
  const o = json as Record<string, unknown>;
  const notes: string[] = [];
  const type = o.model_type;
  if (type === undefined) notes.push(`${source} has no model_type; read as a LLaMA config`);
  else if (type !== "llama" && type !== "mistral") {
    throw new Error(
      `${source}: model_type ${JSON.stringify(type)} is not supported (expected "llama" or ` +
        `"mistral": RMSNorm, rotate-half RoPE, SwiGLU, bias-free projections)`,
    );
  }
  const act = o.hidden_act ?? "silu";
  if (act !== "silu") {
    throw new Error(`${source}: field "hidden_act" is ${JSON.stringify(act)}, expected "silu"`);
  }
  for (const k of ["attention_bias", "mlp_bias"]) {
    if (o[k] === true) {
      throw new Error(`${source}: field "${k}" is true; the decoder has no projection biases`);
    }
  }
  const dim = field(o, "hidden_size", source, { integer: true });
  const heads = field(o, "num_attention_heads", source, { integer: true });
  const kvHeads = field(o, "num_key_value_heads", source, { integer: true, fallback: heads });
  if (o.head_dim === undefined && dim % heads !== 0) {
    throw new Error(
      `${source}: hidden_size ${dim} is not divisible by num_attention_heads ${heads} ` +
        `and there is no head_dim`,
    );
  }
  const headDim = field(o, "head_dim", source, { integer: true, fallback: dim / heads });
  const ropeTheta = field(o, "rope_theta", source, { integer: false, fallback: 10000 });
  const tie = o.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") {
    throw new Error(`${source}: field "tie_word_embeddings" must be true or false, got ${tie}`);
  }
  const contextLength = field(o, "max_position_embeddings", source, {
    integer: true,
    fallback: 2048,
  });
  const scaling = o.rope_scaling;
  if (scaling !== undefined && scaling !== null) {
    if (typeof scaling !== "object" || Array.isArray(scaling)) {
      throw new Error(`${source}: field "rope_scaling" must be an object or null`);
    }
    const s = scaling as Record<string, unknown>;
    const kind = s.rope_type ?? s.type;
    if (kind === "llama3") {
      notes.push(ropeScalingNote({ headDim, theta: ropeTheta, scaling: s }));
    } else if (kind === "dynamic") {
      notes.push(
        `rope_scaling dynamic is not modelled; it only acts beyond max_position_embeddings ` +
          `(${contextLength} tokens)`,
      );
    } else if (kind !== "default") {
      throw new Error(
        `${source}: rope_scaling type ${
          JSON.stringify(kind)
        } is not supported (it changes positions the decoder's plain RoPE would compute ` +
          `differently; supported: none, "default", "llama3" (noted), "dynamic" (noted))`,
      );
    }
  }
  const window = o.sliding_window;
  if (typeof window === "number" && window < contextLength) {
    notes.push(
      `sliding_window ${window} is not modelled; attention differs only for sequences longer ` +
        `than ${window} tokens`,
    );
  }
  const config: DecoderConfig = {
    vocabSize: field(o, "vocab_size", source, { integer: true }),
    dim,
    layers: field(o, "num_hidden_layers", source, { integer: true }),
    heads,
    kvHeads,
    headDim,
    mlpHidden: field(o, "intermediate_size", source, { integer: true }),
    mlpActivation: "silu",
    contextLength,
    ropeTheta,
    normEps: field(o, "rms_norm_eps", source, { integer: false, fallback: 1e-6 }),
    tieEmbeddings: tie,
    embeddingScale: 1,
    lora: { ...(options.lora ?? DEFAULT_DECODER_LORA) },
    ...(options.loraLayers ? { loraLayers: [...options.loraLayers] } : {}),
  };
  if (heads % kvHeads !== 0) {
    throw new Error(
      `${source}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
    );
  }
  return { config, notes };
}

/**
 * Select the decoder's tensors from a checkpoint: skips `rotary_emb.inv_freq`
 * buffers and, with tied embeddings, `lm_head.weight` (noting when it
 * differs from the embedding). Missing and unknown tensors and wrong shapes
 * are errors naming `source` and the tensor.
 *
 * @example
 * ```ts
 * import { DECODER_PRESETS } from "./decoder.ts";
 * import { decoderWeightsFromHf } from "./hf_decoder.ts";
 * const config = DECODER_PRESETS["byte-micro"];
 * try {
 *   decoderWeightsFromHf(new Map(), { config, source: "empty.safetensors" });
 * } catch (err) {
 *   console.log((err as Error).message); // "empty.safetensors: missing 21 tensor(s): …"
 * }
 * ```
 */
export function decoderWeightsFromHf(
  tensors: Map<string, TensorData>,
  options: { config: DecoderConfig; source: string },
): { weights: Map<string, TensorData>; ignored: string[]; notes: string[] } {
  const { config, source } = options;
  const expected = decoderWeightShapes(config);
  const weights = new Map<string, TensorData>();
  const ignored: string[] = [];
  const notes: string[] = [];
  const unknown: string[] = [];
  for (const [name, t] of tensors) {
    if (expected.has(name)) weights.set(name, t);
    else if (name.endsWith(".rotary_emb.inv_freq")) ignored.push(name);
    else if (name === "lm_head.weight" && config.tieEmbeddings) {
      ignored.push(name);
      const e = tensors.get("model.embed_tokens.weight");
      if (e && (e.data.length !== t.data.length || e.data.some((v, i) => v !== t.data[i]))) {
        notes.push(
          `${source}: lm_head.weight differs from model.embed_tokens.weight, but ` +
            `tie_word_embeddings is true: the embedding is used as the head, as transformers does`,
        );
      }
    } else unknown.push(name);
  }
  const missing = [...expected.keys()].filter((n) => !weights.has(n));
  const list = (names: string[]) =>
    names.slice(0, 5).join(", ") + (names.length > 5 ? `, … (${names.length} in all)` : "");
  if (missing.length > 0) {
    throw new Error(
      `${source}: missing ${missing.length} tensor(s): ${list(missing)}` +
        (missing.includes("lm_head.weight")
          ? " (config.json has tie_word_embeddings false, so lm_head.weight is needed)"
          : ""),
    );
  }
  if (unknown.length > 0) {
    throw new Error(
      `${source}: ${unknown.length} tensor(s) the LLaMA decoder does not have: ${list(unknown)} ` +
        `(expected names like model.layers.0.self_attn.q_proj.weight, for ${config.layers} layers)`,
    );
  }
  for (const [name, shape] of expected) {
    const t = weights.get(name)!;
    if (t.shape.join() !== shape.join() || t.data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new Error(
        `${source}: tensor "${name}" has shape [${t.shape}], expected [${shape}] (from ` +
          `config.json: vocab_size ${config.vocabSize}, hidden_size ${config.dim}, heads ` +
          `${config.heads}/${config.kvHeads} of ${config.headDim}, intermediate_size ${config.mlpHidden})`,
      );
    }
  }
  // createDecoder wants exactly its own names; keep its order.
  const ordered = new Map<string, TensorData>();
  for (const name of expected.keys()) ordered.set(name, weights.get(name)!);
  return { weights: ordered, ignored, notes };
}

/** A Hugging Face decoder checkpoint read into memory. */
export interface HfDecoderCheckpoint {
  /** The checkpoint directory. */
  dir: string;
  /** The model config (from config.json, with the requested LoRA). */
  config: DecoderConfig;
  /** Base weights by name (for `createDecoder(config, { weights })`). */
  weights: Map<string, TensorData>;
  /** The tokenizer from `tokenizer.json`. */
  tokenizer: HfTokenizer;
  /** Base parameters, their float32 bytes, and the limit they were checked against. */
  memory: { parameters: number; bytes: number; limit: MemoryLimit };
  /** Files read. */
  files: string[];
  /** Checkpoint tensors not used. */
  ignored: string[];
  /** What the decoder does not model, with its size. */
  notes: string[];
  /** A JSON record of the above except weights and tokenizer, for config.json. */
  provenance: Record<string, unknown>;
}

/** Options of {@link readHfDecoderCheckpoint}. */
export interface ReadHfDecoderOptions {
  /** LoRA rank, alpha, dropout (default {@link DEFAULT_DECODER_LORA}). */
  lora?: LoraConfig;
  /** Layers with LoRA on q and v (default every layer). */
  loraLayers?: number[];
  /** Refuse a model whose float32 weights exceed this many bytes (default: see safetensors_index.ts). */
  maxBytes?: number;
  /** Receives one line stating the model's memory before the weights are read. */
  log?: (line: string) => void;
}

/**
 * Read a Hugging Face LLaMA-family checkpoint directory: config.json, the
 * memory check (before any weights are read), tokenizer.json, then the
 * weights (single file or shards).
 *
 * @example
 * ```ts ignore
 * import { readHfDecoderCheckpoint } from "./hf_decoder.ts";
 * const ckpt = await readHfDecoderCheckpoint("models/Llama-3.2-1B", { log: console.log });
 * // "decoder checkpoint models/Llama-3.2-1B: 1,235,814,400 parameters = 4.60 GiB as float32 …"
 * ```
 */
export async function readHfDecoderCheckpoint(
  dir: string,
  options: ReadHfDecoderOptions = {},
): Promise<HfDecoderCheckpoint> {
  const configPath = join(dir, "config.json");
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(configPath));
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new Error(`${configPath} is not valid JSON: ${err.message}`, { cause: err });
    }
    throw new Error(`could not read ${configPath}: ${(err as Error).message}`, { cause: err });
  }
  const { config, notes } = decoderConfigFromHf(json, {
    source: configPath,
    lora: options.lora,
    loraLayers: options.loraLayers,
  });
  const memory = checkModelMemory(`decoder checkpoint ${dir}`, {
    parameters: decoderParameterCount(config).base,
    maxBytes: options.maxBytes,
  });
  options.log?.(memory.statement);
  const tokenizer = await loadHfTokenizer(join(dir, "tokenizer.json"));
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new Error(
      `${dir}: tokenizer.json has ${tokenizer.vocabSize} token ids, more than config.json's ` +
        `vocab_size ${config.vocabSize}`,
    );
  }
  const loaded = await loadCheckpointWeights(dir);
  const picked = decoderWeightsFromHf(loaded.tensors, { config, source: loaded.files[0] });
  const allNotes = [...notes, ...picked.notes];
  for (const n of allNotes) options.log?.(`note: ${n}`);
  const mem = { parameters: memory.parameters, bytes: memory.bytes, limit: memory.limit };
  return {
    dir,
    config,
    weights: picked.weights,
    tokenizer,
    memory: mem,
    files: loaded.files,
    ignored: picked.ignored,
    notes: allNotes,
    provenance: {
      format: "huggingface-llama",
      dir,
      config: configPath,
      files: loaded.files,
      decoder: config,
      tokenizer: {
        name: tokenizer.name,
        vocabSize: tokenizer.vocabSize,
        bosId: tokenizer.bosId,
        eosId: tokenizer.eosId,
        padId: tokenizer.padId,
      },
      memory: mem,
      ignoredTensors: picked.ignored,
      notes: allNotes,
    },
  };
}

/** A decoder built from a Hugging Face checkpoint. */
export interface HfDecoder {
  /** The model (base frozen, fresh LoRA from `rng`). */
  decoder: Decoder;
  /** Its tokenizer. */
  tokenizer: HfTokenizer;
  /** Everything read from the directory except the weights. */
  checkpoint: Omit<HfDecoderCheckpoint, "weights">;
}

/**
 * Load a Hugging Face LLaMA-family checkpoint into the project's decoder
 * (`createDecoder(config, { weights })`): frozen base, LoRA on q and v of
 * every layer drawn from `rng`, and the tokenizer. The memory is stated (via
 * `log`) and checked against `maxBytes` before any weights are read.
 *
 * @example
 * ```ts ignore
 * import { Rng } from "../random.ts";
 * import { loadHfDecoder } from "./hf_decoder.ts";
 * const { decoder, tokenizer, checkpoint } = await loadHfDecoder("models/Llama-3.2-1B", {
 *   lora: { rank: 8, alpha: 32, dropout: 0.1 },
 *   rng: new Rng(0),
 *   maxBytes: 12 * 2 ** 30,
 * });
 * console.log(checkpoint.notes);
 * ```
 */
export async function loadHfDecoder(
  dir: string,
  options: ReadHfDecoderOptions & { rng: Rng },
): Promise<HfDecoder> {
  const { weights, ...checkpoint } = await readHfDecoderCheckpoint(dir, options);
  const decoder = createDecoder(checkpoint.config, { rng: options.rng, weights });
  decoder.setBaseTrainable(false);
  return { decoder, tokenizer: checkpoint.tokenizer, checkpoint };
}
