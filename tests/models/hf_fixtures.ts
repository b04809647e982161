/**
 * Tiny random checkpoints written exactly in the Hugging Face layout
 * (config.json, model.safetensors or shards + index, preprocessor_config.json,
 * tokenizer.json + tokenizer_config.json), for the loaders' tests. Tensor
 * names and shapes are spelled out here from the `transformers` modules, not
 * taken from the loaders, so the tests check the name mapping.
 *
 * @module
 */

import { join } from "@std/path";
import { encodeSafetensors, type TensorData } from "../../lib/models/safetensors.ts";
import { Rng } from "../../lib/random.ts";
import { byteLevelBpeJson, byteToUnicode } from "../../lib/text/bpe_trainer.ts";

/** Random normal values times `std`, plus `mean`. */
export function randomTensor(
  shape: number[],
  options: { rng: Rng; std: number; mean?: number },
): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from(
    { length: n },
    () => (options.mean ?? 0) + options.std * options.rng.normal(),
  );
  return { shape, data };
}

/** Write tensors as one model.safetensors, or as `shards` shards plus the index. */
export async function writeWeights(
  dir: string,
  tensors: Map<string, TensorData>,
  options: { shards?: number } = {},
): Promise<void> {
  const shards = options.shards ?? 1;
  if (shards === 1) {
    await Deno.writeFile(
      join(dir, "model.safetensors"),
      encodeSafetensors(tensors, { format: "pt" }),
    );
    return;
  }
  const names = [...tensors.keys()];
  const per = Math.ceil(names.length / shards);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let k = 0; k < shards; k++) {
    const file = `model-${String(k + 1).padStart(5, "0")}-of-${
      String(shards).padStart(5, "0")
    }.safetensors`;
    const part = new Map(names.slice(k * per, (k + 1) * per).map((n) => [n, tensors.get(n)!]));
    for (const [n, t] of part) {
      weightMap[n] = file;
      total += t.data.length * 4;
    }
    await Deno.writeFile(join(dir, file), encodeSafetensors(part, { format: "pt" }));
  }
  await Deno.writeTextFile(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
  );
}

/** The config.json of the tiny ViT (2 layers, 16 px, 4×4 patches, width 24, 3 heads, MLP 48). */
export function tinyVitConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["ViTModel"],
    model_type: "vit",
    image_size: 16,
    patch_size: 4,
    num_channels: 3,
    hidden_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 3,
    intermediate_size: 48,
    hidden_act: "gelu",
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    initializer_range: 0.02,
    layer_norm_eps: 1e-12,
    qkv_bias: true,
    ...overrides,
  };
}

/**
 * Random tensors of a ViT with transformers' names (`prefix` "vit." as
 * ViTForImageClassification saves them, "" as ViTModel does), plus a pooler.
 */
export function tinyVitTensors(
  config: Record<string, unknown>,
  options: { seed: number; prefix: string; qkvBias?: boolean; pooler?: boolean },
): Map<string, TensorData> {
  const rng = new Rng(options.seed);
  const d = config.hidden_size as number;
  const c = config.num_channels as number;
  const p = config.patch_size as number;
  const mlp = config.intermediate_size as number;
  const tokens = ((config.image_size as number) / p) ** 2 + 1;
  const pre = options.prefix;
  const t = new Map<string, TensorData>();
  const w = (shape: number[], std = 0.3) => randomTensor(shape, { rng, std });
  const ln = (name: string) => {
    t.set(`${name}.weight`, randomTensor([d], { rng, std: 0.1, mean: 1 }));
    t.set(`${name}.bias`, w([d], 0.1));
  };
  const dense = (name: string, out: number, inp: number, bias = true) => {
    t.set(`${name}.weight`, w([out, inp], 1 / Math.sqrt(inp)));
    if (bias) t.set(`${name}.bias`, w([out], 0.1));
  };
  t.set(`${pre}embeddings.cls_token`, w([1, 1, d], 0.5));
  t.set(`${pre}embeddings.position_embeddings`, w([1, tokens, d], 0.5));
  t.set(`${pre}embeddings.patch_embeddings.projection.weight`, w([d, c, p, p], 0.2));
  t.set(`${pre}embeddings.patch_embeddings.projection.bias`, w([d], 0.1));
  for (let i = 0; i < (config.num_hidden_layers as number); i++) {
    const l = `${pre}encoder.layer.${i}`;
    ln(`${l}.layernorm_before`);
    for (const q of ["query", "key", "value"]) {
      dense(`${l}.attention.attention.${q}`, d, d, options.qkvBias ?? true);
    }
    dense(`${l}.attention.output.dense`, d, d);
    ln(`${l}.layernorm_after`);
    dense(`${l}.intermediate.dense`, mlp, d);
    dense(`${l}.output.dense`, d, mlp);
  }
  ln(`${pre}layernorm`);
  if (options.pooler ?? true) dense(`${pre}pooler.dense`, d, d);
  return t;
}

/** Write a tiny HF ViT directory; returns its tensors and config. */
export async function writeTinyHfVit(
  dir: string,
  options: {
    seed: number;
    prefix?: string;
    config?: Record<string, unknown>;
    shards?: number;
    preprocessor?: Record<string, unknown>;
  },
): Promise<{ tensors: Map<string, TensorData>; config: Record<string, unknown> }> {
  const config = options.config ?? tinyVitConfig();
  const tensors = tinyVitTensors(config, {
    seed: options.seed,
    prefix: options.prefix ?? "vit.",
    qkvBias: (config.qkv_bias as boolean | undefined) ?? true,
  });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config, null, 2));
  if (options.preprocessor) {
    await Deno.writeTextFile(
      join(dir, "preprocessor_config.json"),
      JSON.stringify(options.preprocessor, null, 2),
    );
  }
  await writeWeights(dir, tensors, { shards: options.shards });
  return { tensors, config };
}

/** The config.json of the tiny LLaMA (2 layers, width 32, 4 heads / 2 KV heads of 8, MLP 48). */
export function tinyLlamaConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: 300,
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    intermediate_size: 48,
    hidden_act: "silu",
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    tie_word_embeddings: false,
    max_position_embeddings: 64,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 256,
    eos_token_id: 257,
    torch_dtype: "float32",
    ...overrides,
  };
}

/** Random tensors of a LLaMA with transformers' names. */
export function tinyLlamaTensors(
  config: Record<string, unknown>,
  options: { seed: number; lmHead?: boolean; invFreq?: boolean },
): Map<string, TensorData> {
  const rng = new Rng(options.seed);
  const d = config.hidden_size as number;
  const v = config.vocab_size as number;
  const hd = config.head_dim as number;
  const h = config.num_attention_heads as number;
  const kv = config.num_key_value_heads as number;
  const mlp = config.intermediate_size as number;
  const t = new Map<string, TensorData>();
  const w = (shape: number[]) => randomTensor(shape, { rng, std: 1 / Math.sqrt(shape[1]) });
  const norm = () => randomTensor([d], { rng, std: 0.1, mean: 1 });
  t.set("model.embed_tokens.weight", randomTensor([v, d], { rng, std: 1 }));
  for (let i = 0; i < (config.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}`;
    t.set(`${p}.input_layernorm.weight`, norm());
    t.set(`${p}.self_attn.q_proj.weight`, w([h * hd, d]));
    t.set(`${p}.self_attn.k_proj.weight`, w([kv * hd, d]));
    t.set(`${p}.self_attn.v_proj.weight`, w([kv * hd, d]));
    t.set(`${p}.self_attn.o_proj.weight`, w([d, h * hd]));
    if (options.invFreq) {
      t.set(`${p}.self_attn.rotary_emb.inv_freq`, randomTensor([hd / 2], { rng, std: 1 }));
    }
    t.set(`${p}.post_attention_layernorm.weight`, norm());
    t.set(`${p}.mlp.gate_proj.weight`, w([mlp, d]));
    t.set(`${p}.mlp.up_proj.weight`, w([mlp, d]));
    t.set(`${p}.mlp.down_proj.weight`, w([d, mlp]));
  }
  t.set("model.norm.weight", norm());
  if (options.lmHead ?? !config.tie_word_embeddings) {
    t.set("lm_head.weight", randomTensor([v, d], { rng, std: 1 / Math.sqrt(d) }));
  }
  return t;
}

/**
 * A byte-level BPE tokenizer.json: id = byte value (0..255), one merge
 * ("h e" → "he" = 258), BOS `<s>` = 256 and EOS `</s>` = 257 as added
 * special tokens: 259 ids.
 */
export function tinyTokenizerJson(): Record<string, unknown> {
  const chars = byteToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((ch, b) => (vocab[ch] = b));
  vocab["he"] = 258;
  return byteLevelBpeJson({
    vocab,
    merges: [["h", "e"]],
    specials: [{ id: 256, content: "<s>" }, { id: 257, content: "</s>" }],
    postProcessor: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
  });
}

/** Write a tiny HF LLaMA directory (with tokenizer); returns its tensors and config. */
export async function writeTinyHfLlama(
  dir: string,
  options: {
    seed: number;
    config?: Record<string, unknown>;
    shards?: number;
    lmHead?: boolean;
    invFreq?: boolean;
    weights?: boolean;
  },
): Promise<{ tensors: Map<string, TensorData>; config: Record<string, unknown> }> {
  const config = options.config ?? tinyLlamaConfig();
  const tensors = tinyLlamaTensors(config, {
    seed: options.seed,
    lmHead: options.lmHead,
    invFreq: options.invFreq,
  });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config, null, 2));
  await Deno.writeTextFile(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson()));
  await Deno.writeTextFile(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ bos_token: "<s>", eos_token: "</s>" }),
  );
  if (options.weights ?? true) await writeWeights(dir, tensors, { shards: options.shards });
  return { tensors, config };
}
