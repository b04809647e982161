/**
 * Vision Transformers from Hugging Face checkpoint directories.
 *
 * A directory holds `config.json` (a `ViTConfig`), `model.safetensors` (or
 * shards listed in `model.safetensors.index.json`) and optionally
 * `preprocessor_config.json` (`image_mean`, `image_std`). Tensors carry the
 * `transformers` ViT names — with the `vit.` prefix of
 * `ViTForImageClassification` or without it, as `ViTModel` saves them — and
 * are renamed to the project's timm-style names ({@link hfVitName}):
 *
 * | Hugging Face                                              | project                  |
 * | --------------------------------------------------------- | ------------------------ |
 * | `vit.embeddings.patch_embeddings.projection.{weight,bias}` | `patch_embed.*`          |
 * | `vit.embeddings.cls_token` [1, 1, d]                       | `cls_token`              |
 * | `vit.embeddings.position_embeddings` [1, T, d]             | `pos_embed`              |
 * | `vit.encoder.layer.{i}.layernorm_before.*`                 | `blocks.{i}.norm1.*`     |
 * | `vit.encoder.layer.{i}.attention.attention.query.*`        | `blocks.{i}.attn.q.*`    |
 * | `….attention.attention.key.*` / `.value.*`                 | `….attn.k.*` / `.v.*`    |
 * | `vit.encoder.layer.{i}.attention.output.dense.*`           | `blocks.{i}.attn.proj.*` |
 * | `vit.encoder.layer.{i}.layernorm_after.*`                  | `blocks.{i}.norm2.*`     |
 * | `vit.encoder.layer.{i}.intermediate.dense.*`               | `blocks.{i}.mlp.fc1.*`   |
 * | `vit.encoder.layer.{i}.output.dense.*`                     | `blocks.{i}.mlp.fc2.*`   |
 * | `vit.layernorm.*`                                          | `norm.*`                 |
 *
 * Layouts are the same on both sides (PyTorch `[out, in]` linear weights,
 * `[d, C, p, p]` patch projection), so no tensor is transposed. The pooler
 * (`vit.pooler.*`), a classifier (`classifier.*`) and the masked-image-modelling
 * `mask_token` are not part of the backbone and are skipped (listed in
 * `ignored`); any other unknown tensor is an error. With `qkv_bias: false`
 * the q, k, v biases are zeros.
 *
 * **GELU.** `hidden_act: "gelu"` (every Google ViT, timm, iBOT, DINO) is the
 * exact erf form; the config is built with `gelu: "erf"` (see `vit.ts`), so
 * the forward pass matches `transformers` to float32 rounding (tested
 * against a plain-TypeScript reference, 1e-4). The project's default tanh
 * form would differ by at most 4.73e-4 per activation.
 *
 * **Images.** The checkpoint expects `image_size` pixels (224 for ViT-B/16);
 * CIFAR images are 32×32. {@link createHfVitClassifier} resizes its input
 * with `tf.image.resizeBilinear` (half-pixel centres, as PIL's and
 * torchvision's bilinear upsampling) inside the forward pass; no gradient
 * flows through the resize (it acts on the data, not on a variable).
 * Normalisation stays where the harness does it (`imageBatch` with the
 * training config's mean/std): set them to {@link HfVitCheckpoint.preprocessing}
 * (`image_mean`/`image_std` of `preprocessor_config.json`, else 0.5/0.5).
 * Bilinear interpolation is a convex combination per channel, so normalising
 * before or after resizing gives the same numbers.
 *
 * **The paper's iBOT ViT-B/16.** The ViT track of the paper uses the iBOT
 * ViT-B/16 pre-trained on ImageNet-21K (HiDe-LoRA's
 * `vit_base_patch16_224_21k_ibot`:
 * `https://lf3-nlp-opensource.bytetos.com/obj/nlp-opensource/archive/2022/ibot/vitb_16_pt22k/checkpoint.pth`,
 * its `teacher` state dict with the `backbone.` prefix removed; timm names,
 * fused `qkv`, LayerNorm eps 1e-6, exact GELU). One conversion step, with
 * PyTorch and `safetensors` installed, writes a directory this module loads:
 *
 * ```python
 * import json, os, torch
 * from safetensors.torch import save_file
 * sd = torch.load("checkpoint.pth", map_location="cpu")["teacher"]
 * sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
 * out, L = {}, "vit.encoder.layer"
 * out["vit.embeddings.cls_token"] = sd["cls_token"]
 * out["vit.embeddings.position_embeddings"] = sd["pos_embed"]
 * out["vit.embeddings.patch_embeddings.projection.weight"] = sd["patch_embed.proj.weight"]
 * out["vit.embeddings.patch_embeddings.projection.bias"] = sd["patch_embed.proj.bias"]
 * for i in range(12):
 *     b = f"blocks.{i}."
 *     for t in ("weight", "bias"):
 *         q, k, v = sd[b + "attn.qkv." + t].chunk(3, dim=0)
 *         out[f"{L}.{i}.attention.attention.query.{t}"] = q
 *         out[f"{L}.{i}.attention.attention.key.{t}"] = k
 *         out[f"{L}.{i}.attention.attention.value.{t}"] = v
 *         out[f"{L}.{i}.attention.output.dense.{t}"] = sd[b + "attn.proj." + t]
 *         out[f"{L}.{i}.layernorm_before.{t}"] = sd[b + "norm1." + t]
 *         out[f"{L}.{i}.layernorm_after.{t}"] = sd[b + "norm2." + t]
 *         out[f"{L}.{i}.intermediate.dense.{t}"] = sd[b + "mlp.fc1." + t]
 *         out[f"{L}.{i}.output.dense.{t}"] = sd[b + "mlp.fc2." + t]
 * for t in ("weight", "bias"):
 *     out["vit.layernorm." + t] = sd["norm." + t]
 * os.makedirs("ibot-vit-b16-21k", exist_ok=True)
 * save_file({k: v.float().contiguous() for k, v in out.items()},
 *           "ibot-vit-b16-21k/model.safetensors", metadata={"format": "pt"})
 * json.dump({"model_type": "vit", "image_size": 224, "patch_size": 16, "num_channels": 3,
 *            "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
 *            "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
 *            "qkv_bias": True}, open("ibot-vit-b16-21k/config.json", "w"), indent=2)
 * # HiDe-LoRA's CIFAR-100 pipeline normalises with CIFAR-100's channel statistics:
 * json.dump({"image_mean": [0.5071, 0.4867, 0.4408], "image_std": [0.2675, 0.2565, 0.2761]},
 *           open("ibot-vit-b16-21k/preprocessor_config.json", "w"), indent=2)
 * ```
 *
 * (HiDe-LoRA also resizes bicubically — 256 then a 224 centre crop at test
 * time, random resized crops and flips in training; the harness resizes
 * 32 → 224 bilinearly and does not augment.)
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "@std/path";
import type { Rng } from "../random.ts";
import type { LoraConfig } from "./backbone.ts";
import { checkModelMemory, loadCheckpointWeights, type MemoryLimit } from "./safetensors_index.ts";
import type { TensorData } from "./safetensors.ts";
import { createVit, DEFAULT_VIT_LORA, type Vit, type VitConfig } from "./vit.ts";
import { createVitClassifier, type VitClassifier } from "./vit_classifier.ts";
import type { Tensor4D } from "../tensor.ts";

// ---------------------------------------------------------------------------
// Configuration

/** The fields of a Hugging Face `ViTConfig` (config.json) that shape the model. */
export interface HfVitConfigJson {
  /** `"vit"` (checked when present). */
  model_type?: string;
  /** Input side in pixels (an integer, or [h, w] with h = w). */
  image_size: number | [number, number];
  /** Patch side. */
  patch_size: number;
  /** Input channels (default 3). */
  num_channels?: number;
  /** Token width. */
  hidden_size: number;
  /** Blocks. */
  num_hidden_layers: number;
  /** Attention heads. */
  num_attention_heads: number;
  /** MLP width (→ mlpRatio = intermediate_size / hidden_size). */
  intermediate_size: number;
  /** `"gelu"` (exact; the default) or `"gelu_new"` / `"gelu_pytorch_tanh"` (tanh form). */
  hidden_act?: string;
  /** LayerNorm epsilon (default 1e-12, transformers' ViTConfig default). */
  layer_norm_eps?: number;
  /** Whether q, k, v have biases (default true). */
  qkv_bias?: boolean;
}

/**
 * The shape-defining fields of `google/vit-base-patch16-224-in21k`'s config.json.
 *
 * @example
 * ```ts
 * import { VIT_B16_HF_CONFIG } from "./hf_vit.ts";
 * console.log(VIT_B16_HF_CONFIG.hidden_size); // 768
 * ```
 */
export const VIT_B16_HF_CONFIG: Readonly<HfVitConfigJson> = Object.freeze({
  model_type: "vit",
  image_size: 224,
  patch_size: 16,
  num_channels: 3,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: "gelu",
  layer_norm_eps: 1e-12,
  qkv_bias: true,
});

function positiveInt(json: Record<string, unknown>, key: string, source: string): number {
  const v = json[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new Error(
      `${source}: field "${key}" must be a positive integer, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/**
 * The project's {@link VitConfig} for a Hugging Face ViT config.json:
 * image_size, patch_size, num_channels, hidden_size → dim, num_hidden_layers →
 * depth, num_attention_heads → heads, intermediate_size / hidden_size →
 * mlpRatio, layer_norm_eps, hidden_act → gelu (`erf` for `"gelu"`). LoRA
 * defaults to {@link DEFAULT_VIT_LORA} on every block. Errors name `source`
 * and the field.
 *
 * @example
 * ```ts
 * import { VIT_B16_HF_CONFIG, vitConfigFromHf } from "./hf_vit.ts";
 * const config = vitConfigFromHf(VIT_B16_HF_CONFIG, {
 *   source: "vit-b16",
 *   lora: { rank: 8, alpha: 32, dropout: 0.1 },
 *   loraBlocks: [0, 1, 2, 3, 4],
 * });
 * console.log(config.dim, config.depth, config.mlpRatio, config.gelu); // 768 12 4 erf
 * ```
 */
export function vitConfigFromHf(
  json: unknown,
  options: { source: string; lora?: LoraConfig; loraBlocks?: number[] },
): VitConfig {
  const source = options.source;
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`${source}: expected a ViT config object, got ${JSON.stringify(json)}`);
  }
  const o = json as Record<string, unknown>;
  if (o.model_type !== undefined && o.model_type !== "vit") {
    throw new Error(`${source}: model_type is ${JSON.stringify(o.model_type)}, expected "vit"`);
  }
  let imageSize: number;
  if (Array.isArray(o.image_size)) {
    const [h, w] = o.image_size as unknown[];
    if (o.image_size.length !== 2 || h !== w || typeof h !== "number") {
      throw new Error(
        `${source}: field "image_size" must be an integer or a square [h, w], got ${
          JSON.stringify(o.image_size)
        }`,
      );
    }
    imageSize = positiveInt({ image_size: h }, "image_size", source);
  } else imageSize = positiveInt(o, "image_size", source);
  const patchSize = positiveInt(o, "patch_size", source);
  const channels = o.num_channels === undefined ? 3 : positiveInt(o, "num_channels", source);
  const dim = positiveInt(o, "hidden_size", source);
  const depth = positiveInt(o, "num_hidden_layers", source);
  const heads = positiveInt(o, "num_attention_heads", source);
  const hidden = positiveInt(o, "intermediate_size", source);
  const act = o.hidden_act ?? "gelu";
  let gelu: "erf" | "tanh";
  if (act === "gelu") gelu = "erf";
  else if (act === "gelu_new" || act === "gelu_pytorch_tanh") gelu = "tanh";
  else {
    throw new Error(
      `${source}: field "hidden_act" is ${JSON.stringify(act)}; expected "gelu" (exact) or ` +
        `"gelu_new" / "gelu_pytorch_tanh" (tanh approximation)`,
    );
  }
  const eps = o.layer_norm_eps ?? 1e-12;
  if (typeof eps !== "number" || !(eps > 0)) {
    throw new Error(`${source}: field "layer_norm_eps" must be a number > 0, got ${eps}`);
  }
  if (o.qkv_bias !== undefined && typeof o.qkv_bias !== "boolean") {
    throw new Error(`${source}: field "qkv_bias" must be true or false, got ${o.qkv_bias}`);
  }
  if (imageSize % patchSize !== 0) {
    throw new Error(
      `${source}: image_size ${imageSize} is not a multiple of patch_size ${patchSize}`,
    );
  }
  if (dim % heads !== 0) {
    throw new Error(
      `${source}: hidden_size ${dim} is not divisible by num_attention_heads ${heads}`,
    );
  }
  return {
    imageSize,
    patchSize,
    channels,
    dim,
    depth,
    heads,
    mlpRatio: hidden / dim,
    layerNormEps: eps,
    gelu,
    lora: { ...(options.lora ?? DEFAULT_VIT_LORA) },
    loraBlocks: options.loraBlocks
      ? [...options.loraBlocks]
      : Array.from({ length: depth }, (_, i) => i),
  };
}

/**
 * ViT shapes defined by Hugging Face config.json fields: `vit-b16` is
 * `google/vit-base-patch16-224-in21k` (224 px, 16×16 patches, dim 768, 12
 * blocks, 12 heads, MLP 3072, exact GELU, LayerNorm eps 1e-12; 85.8 M
 * parameters = 327 MiB as float32). A checkpoint's own config.json wins over
 * the preset (the iBOT conversion above writes eps 1e-6).
 *
 * @example
 * ```ts
 * import { HF_VIT_PRESETS } from "./hf_vit.ts";
 * const config = { ...HF_VIT_PRESETS["vit-b16"], loraBlocks: [0, 1, 2, 3, 4] };
 * ```
 */
export const HF_VIT_PRESETS: Readonly<Record<string, VitConfig>> = Object.freeze({
  "vit-b16": Object.freeze(vitConfigFromHf(VIT_B16_HF_CONFIG, { source: "preset vit-b16" })),
});

/**
 * Base parameters of a ViT config, without building it.
 *
 * @example
 * ```ts
 * import { HF_VIT_PRESETS, vitParameterCount } from "./hf_vit.ts";
 * vitParameterCount(HF_VIT_PRESETS["vit-b16"]); // 85798656
 * ```
 */
export function vitParameterCount(config: VitConfig): number {
  const d = config.dim;
  const hidden = config.mlpRatio * d;
  const tokens = (config.imageSize / config.patchSize) ** 2 + 1;
  const embed = d * config.channels * config.patchSize ** 2 + d + d + tokens * d;
  const block = 4 * (d * d + d) + 2 * 2 * d + (hidden * d + hidden) + (d * hidden + d);
  return embed + config.depth * block + 2 * d;
}

/**
 * The base weights' project names and shapes for a config, in the order
 * `createVit` builds them, without allocating anything.
 *
 * @example
 * ```ts
 * import { HF_VIT_PRESETS, vitWeightShapes } from "./hf_vit.ts";
 * vitWeightShapes(HF_VIT_PRESETS["vit-b16"]).get("pos_embed"); // [1, 197, 768]
 * ```
 */
export function vitWeightShapes(config: VitConfig): Map<string, number[]> {
  const d = config.dim;
  const hidden = config.mlpRatio * d;
  const tokens = (config.imageSize / config.patchSize) ** 2 + 1;
  const out = new Map<string, number[]>([
    ["patch_embed.weight", [d, config.channels, config.patchSize, config.patchSize]],
    ["patch_embed.bias", [d]],
    ["cls_token", [1, 1, d]],
    ["pos_embed", [1, tokens, d]],
  ]);
  const pair = (name: string, w: number[], b: number[]) => {
    out.set(`${name}.weight`, w);
    out.set(`${name}.bias`, b);
  };
  for (let i = 0; i < config.depth; i++) {
    pair(`blocks.${i}.norm1`, [d], [d]);
    for (const p of ["q", "k", "v", "proj"]) pair(`blocks.${i}.attn.${p}`, [d, d], [d]);
    pair(`blocks.${i}.norm2`, [d], [d]);
    pair(`blocks.${i}.mlp.fc1`, [hidden, d], [hidden]);
    pair(`blocks.${i}.mlp.fc2`, [d, hidden], [d]);
  }
  pair("norm", [d], [d]);
  return out;
}

// ---------------------------------------------------------------------------
// Names

const LAYER = /^encoder\.layer\.(\d+)\.(.+)$/;

const LAYER_PARTS: Record<string, string> = {
  "layernorm_before": "norm1",
  "attention.attention.query": "attn.q",
  "attention.attention.key": "attn.k",
  "attention.attention.value": "attn.v",
  "attention.output.dense": "attn.proj",
  "layernorm_after": "norm2",
  "intermediate.dense": "mlp.fc1",
  "output.dense": "mlp.fc2",
};

const TOP_PARTS: Record<string, string> = {
  "embeddings.cls_token": "cls_token",
  "embeddings.position_embeddings": "pos_embed",
  "embeddings.patch_embeddings.projection.weight": "patch_embed.weight",
  "embeddings.patch_embeddings.projection.bias": "patch_embed.bias",
  "layernorm.weight": "norm.weight",
  "layernorm.bias": "norm.bias",
};

/**
 * The project's name of a Hugging Face ViT tensor (with or without the
 * `vit.` prefix), or undefined for a name outside the backbone.
 *
 * @example
 * ```ts
 * import { hfVitName } from "./hf_vit.ts";
 * hfVitName("vit.encoder.layer.3.attention.attention.query.weight"); // "blocks.3.attn.q.weight"
 * hfVitName("vit.pooler.dense.weight"); // undefined
 * ```
 */
export function hfVitName(hfName: string): string | undefined {
  const name = hfName.startsWith("vit.") ? hfName.slice(4) : hfName;
  if (name in TOP_PARTS) return TOP_PARTS[name];
  const m = LAYER.exec(name);
  if (!m) return undefined;
  const rest = m[2];
  const dot = rest.lastIndexOf(".");
  const module = rest.slice(0, dot);
  const param = rest.slice(dot + 1);
  if (!(module in LAYER_PARTS) || (param !== "weight" && param !== "bias")) return undefined;
  return `blocks.${m[1]}.${LAYER_PARTS[module]}.${param}`;
}

/**
 * The Hugging Face name (`vit.` prefix) of a project ViT weight: the inverse
 * of {@link hfVitName}.
 *
 * @example
 * ```ts
 * import { toHfVitName } from "./hf_vit.ts";
 * toHfVitName("blocks.0.mlp.fc2.bias"); // "vit.encoder.layer.0.output.dense.bias"
 * ```
 */
export function toHfVitName(name: string): string {
  for (const [hf, ours] of Object.entries(TOP_PARTS)) if (ours === name) return `vit.${hf}`;
  const m = /^blocks\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    for (const [hf, ours] of Object.entries(LAYER_PARTS)) {
      if (ours === m[2]) return `vit.encoder.layer.${m[1]}.${hf}.${m[3]}`;
    }
  }
  throw new Error(`toHfVitName: "${name}" is not a ViT base weight name`);
}

function ignorable(hfName: string): boolean {
  const name = hfName.startsWith("vit.") ? hfName.slice(4) : hfName;
  return name.startsWith("pooler.") || hfName.startsWith("classifier.") ||
    name === "embeddings.mask_token";
}

/**
 * Rename Hugging Face ViT tensors to the project's names and check them
 * against `config`. Skipped tensors (pooler, classifier, mask token) are
 * returned in `ignored`; an unknown tensor, a tensor of a block beyond
 * `config.depth`, two tensors mapping to one name, a missing tensor and a
 * wrong shape are errors naming `source` and the Hugging Face tensor name.
 * With `qkvBias: false`, zero q/k/v biases are added.
 *
 * @example
 * ```ts
 * import { HF_VIT_PRESETS, vitWeightsFromHf } from "./hf_vit.ts";
 * try {
 *   vitWeightsFromHf(new Map([
 *     ["vit.pooler.dense.bias", { shape: [768], data: new Float32Array(768) }],
 *   ]), { config: HF_VIT_PRESETS["vit-b16"], source: "example.safetensors" });
 * } catch (err) {
 *   console.log((err as Error).message); // "example.safetensors: missing 198 tensor(s) of a 12-block ViT: …"
 * }
 * ```
 */
export function vitWeightsFromHf(
  tensors: Map<string, TensorData>,
  options: { config: VitConfig; source: string; qkvBias?: boolean },
): { weights: Map<string, TensorData>; ignored: string[] } {
  const { config, source } = options;
  const weights = new Map<string, TensorData>();
  const from = new Map<string, string>();
  const ignored: string[] = [];
  const unknown: string[] = [];
  for (const [hf, t] of tensors) {
    const name = hfVitName(hf);
    if (name === undefined) {
      (ignorable(hf) ? ignored : unknown).push(hf);
      continue;
    }
    const block = /^blocks\.(\d+)\./.exec(name);
    if (block && Number(block[1]) >= config.depth) {
      throw new Error(
        `${source}: tensor "${hf}" belongs to block ${block[1]}, but config.json has ` +
          `num_hidden_layers ${config.depth}`,
      );
    }
    if (from.has(name)) {
      throw new Error(`${source}: tensors "${from.get(name)}" and "${hf}" both map to "${name}"`);
    }
    from.set(name, hf);
    weights.set(name, t);
  }
  if (unknown.length > 0) {
    throw new Error(
      `${source}: ${unknown.length} tensor(s) are not part of a Hugging Face ViT: ${
        unknown.slice(0, 5).join(", ")
      }${
        unknown.length > 5 ? ", …" : ""
      } (expected names like vit.encoder.layer.0.attention.attention.query.weight)`,
    );
  }
  if (options.qkvBias === false) {
    for (let i = 0; i < config.depth; i++) {
      for (const p of ["q", "k", "v"]) {
        const name = `blocks.${i}.attn.${p}.bias`;
        if (weights.has(name)) {
          throw new Error(
            `${source}: config.json says qkv_bias false, but "${from.get(name)}" exists`,
          );
        }
        weights.set(name, { shape: [config.dim], data: new Float32Array(config.dim) });
      }
    }
  }
  const shapes = vitWeightShapes(config);
  const missing = [...shapes.keys()].filter((n) => !weights.has(n)).map(toHfVitName);
  if (missing.length > 0) {
    throw new Error(
      `${source}: missing ${missing.length} tensor(s) of a ${config.depth}-block ViT: ${
        missing.slice(0, 5).join(", ")
      }${missing.length > 5 ? ", …" : ""}`,
    );
  }
  for (const [name, shape] of shapes) {
    const t = weights.get(name)!;
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.shape.join() !== shape.join() || t.data.length !== n) {
      throw new Error(
        `${source}: tensor "${from.get(name) ?? toHfVitName(name)}" has shape [${t.shape}], ` +
          `expected [${shape}] (from config.json: image_size ${config.imageSize}, patch_size ` +
          `${config.patchSize}, hidden_size ${config.dim}, intermediate_size ${
            config.mlpRatio * config.dim
          })`,
      );
    }
  }
  // createVit wants exactly its own names; keep its order.
  const ordered = new Map<string, TensorData>();
  for (const name of shapes.keys()) ordered.set(name, weights.get(name)!);
  return { weights: ordered, ignored };
}

// ---------------------------------------------------------------------------
// Preprocessing

/** How images must be prepared for a checkpoint. */
export interface ImagePreprocessing {
  /** Side the model takes (config.json `image_size`). */
  imageSize: number;
  /** Per-channel mean subtracted from pixel/255 (pass to the training config's `mean`). */
  mean: [number, number, number];
  /** Per-channel std (the training config's `std`). */
  std: [number, number, number];
  /** Where mean/std came from. */
  source: string;
}

function triple(v: unknown, key: string, source: string, positive: boolean) {
  const list = typeof v === "number" ? [v, v, v] : v;
  if (
    !Array.isArray(list) || list.length !== 3 ||
    !list.every((x) => typeof x === "number" && Number.isFinite(x) && (!positive || x > 0))
  ) {
    throw new Error(
      `${source}: field "${key}" must be 3 ${positive ? "positive " : ""}numbers, got ${
        JSON.stringify(v)
      }`,
    );
  }
  return list as [number, number, number];
}

/**
 * The normalisation of a checkpoint directory: `image_mean` / `image_std` of
 * `preprocessor_config.json` when the file exists (identity when
 * `do_normalize` is false; a `rescale_factor` other than 1/255 or
 * `do_rescale: false` is folded into mean and std, since the harness always
 * divides pixels by 255), else 0.5 / 0.5.
 *
 * @example
 * ```ts ignore
 * import { readImagePreprocessing } from "./hf_vit.ts";
 * const p = await readImagePreprocessing("models/vit-b16", { imageSize: 224 });
 * console.log(p.mean, p.std, p.source);
 * ```
 */
export async function readImagePreprocessing(
  dir: string,
  options: { imageSize: number },
): Promise<ImagePreprocessing> {
  const path = join(dir, "preprocessor_config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return {
        imageSize: options.imageSize,
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
        source: `0.5/0.5 (no ${path})`,
      };
    }
    throw new Error(`could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (o.do_normalize === false) {
    return { imageSize: options.imageSize, mean: [0, 0, 0], std: [1, 1, 1], source: path };
  }
  const mean = triple(o.image_mean ?? 0.5, "image_mean", path, false);
  const std = triple(o.image_std ?? 0.5, "image_std", path, true);
  const factor = o.do_rescale === false ? 1 : (o.rescale_factor ?? 1 / 255);
  if (typeof factor !== "number" || !(factor > 0)) {
    throw new Error(`${path}: field "rescale_factor" must be a number > 0, got ${factor}`);
  }
  // (v·f − m)/s = (v/255 − m/(255 f)) / (s/(255 f)).
  const k = 1 / (255 * factor);
  const close = Math.abs(k - 1) < 1e-9;
  return {
    imageSize: options.imageSize,
    mean: close ? mean : mean.map((m) => m * k) as [number, number, number],
    std: close ? std : std.map((s) => s * k) as [number, number, number],
    source: path,
  };
}

/**
 * Resize NHWC images to `size`×`size` with bilinear interpolation
 * (half-pixel centres, no corner alignment: PIL's and torchvision's
 * bilinear upsampling). Images already at that size are returned as a
 * copy-free reshape.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { resizeImages } from "./hf_vit.ts";
 * const big = resizeImages(tf.zeros([2, 32, 32, 3]) as tf.Tensor4D, { size: 224 }); // [2, 224, 224, 3]
 * ```
 */
export function resizeImages(x: Tensor4D, options: { size: number }): Tensor4D {
  const { size } = options;
  if (x.shape[1] === size && x.shape[2] === size) return tf.reshape(x, x.shape);
  return tf.image.resizeBilinear(x, [size, size], false, true);
}

// ---------------------------------------------------------------------------
// Loading

/** A Hugging Face ViT checkpoint read into memory, ready to build models from. */
export interface HfVitCheckpoint {
  /** The checkpoint directory. */
  dir: string;
  /** The model config (from config.json, with the requested LoRA placement). */
  config: VitConfig;
  /** Base weights by the project's names (for `createVit` / `createVitClassifier`). */
  weights: Map<string, TensorData>;
  /** Image size and normalisation. */
  preprocessing: ImagePreprocessing;
  /** Base parameters and their float32 bytes, and the limit they were checked against. */
  memory: { parameters: number; bytes: number; limit: MemoryLimit };
  /** Files read. */
  files: string[];
  /** Checkpoint tensors that are not part of the backbone (pooler, classifier, mask token). */
  ignored: string[];
  /** A JSON record of all of the above except the weights, for config.json. */
  provenance: Record<string, unknown>;
}

/** Options of {@link readHfVitCheckpoint}. */
export interface ReadHfVitOptions {
  /** LoRA rank, alpha, dropout (default {@link DEFAULT_VIT_LORA}). */
  lora?: LoraConfig;
  /** Blocks with LoRA on q and v (default every block). */
  loraBlocks?: number[];
  /**
   * A key of {@link HF_VIT_PRESETS} the checkpoint must match in shape
   * (image/patch size, width, depth, heads, MLP width); config.json may then be absent.
   */
  preset?: string;
  /** Refuse checkpoints whose float32 weights exceed this many bytes (default: see safetensors_index.ts). */
  maxBytes?: number;
  /** Receives one line stating the model's memory before the weights are read. */
  log?: (line: string) => void;
}

const SHAPE_FIELDS = ["imageSize", "patchSize", "channels", "dim", "depth", "heads", "mlpRatio"];

/**
 * Read a Hugging Face ViT checkpoint directory: config.json (or the
 * `preset`), the memory check, preprocessor_config.json, then the weights
 * (single file or shards), renamed to the project's names.
 *
 * @example
 * ```ts ignore
 * import { readHfVitCheckpoint } from "./hf_vit.ts";
 * const ckpt = await readHfVitCheckpoint("models/ibot-vit-b16-21k", {
 *   preset: "vit-b16",
 *   lora: { rank: 8, alpha: 32, dropout: 0.1 },
 *   loraBlocks: [0, 1, 2, 3, 4],
 *   log: console.log,
 * });
 * ```
 */
export async function readHfVitCheckpoint(
  dir: string,
  options: ReadHfVitOptions = {},
): Promise<HfVitCheckpoint> {
  const configPath = join(dir, "config.json");
  let json: unknown;
  let configSource = configPath;
  try {
    json = JSON.parse(await Deno.readTextFile(configPath));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound && options.preset !== undefined) {
      json = undefined;
    } else if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        `${dir}: no config.json (a Hugging Face ViTConfig); write one or name a preset ` +
          `(${Object.keys(HF_VIT_PRESETS).join(", ")})`,
      );
    } else if (err instanceof SyntaxError) {
      throw new Error(`${configPath} is not valid JSON: ${err.message}`, { cause: err });
    } else {
      throw new Error(`could not read ${configPath}: ${(err as Error).message}`, { cause: err });
    }
  }
  let preset: VitConfig | undefined;
  if (options.preset !== undefined) {
    preset = HF_VIT_PRESETS[options.preset];
    if (!preset) {
      throw new Error(
        `unknown ViT preset "${options.preset}"; known: ${Object.keys(HF_VIT_PRESETS).join(", ")}`,
      );
    }
  }
  let config: VitConfig;
  let qkvBias = true;
  if (json === undefined) {
    config = {
      ...preset!,
      lora: { ...(options.lora ?? DEFAULT_VIT_LORA) },
      loraBlocks: options.loraBlocks ?? preset!.loraBlocks,
    };
    configSource = `preset ${options.preset} (no config.json in ${dir})`;
  } else {
    config = vitConfigFromHf(json, {
      source: configPath,
      lora: options.lora,
      loraBlocks: options.loraBlocks,
    });
    qkvBias = (json as { qkv_bias?: boolean }).qkv_bias ?? true;
    if (preset) {
      const diff = SHAPE_FIELDS.filter((k) =>
        (config as unknown as Record<string, number>)[k] !==
          (preset as unknown as Record<string, number>)[k]
      );
      if (diff.length > 0) {
        throw new Error(
          `${configPath} does not describe a ${options.preset}: ${
            diff.map((k) =>
              `${k} ${(config as unknown as Record<string, number>)[k]} (expected ${
                (preset as unknown as Record<string, number>)[k]
              })`
            ).join(", ")
          }`,
        );
      }
    }
  }
  const memory = checkModelMemory(`ViT checkpoint ${dir}`, {
    parameters: vitParameterCount(config),
    maxBytes: options.maxBytes,
  });
  options.log?.(memory.statement);
  const preprocessing = await readImagePreprocessing(dir, { imageSize: config.imageSize });
  const loaded = await loadCheckpointWeights(dir);
  const source = loaded.files[0];
  const { weights, ignored } = vitWeightsFromHf(loaded.tensors, { config, source, qkvBias });
  const mem = { parameters: memory.parameters, bytes: memory.bytes, limit: memory.limit };
  return {
    dir,
    config,
    weights,
    preprocessing,
    memory: mem,
    files: loaded.files,
    ignored,
    provenance: {
      format: "huggingface-vit",
      dir,
      config: configSource,
      files: loaded.files,
      preset: options.preset ?? null,
      vit: config,
      preprocessing,
      memory: mem,
      ignoredTensors: ignored,
    },
  };
}

/** A ViT built from a Hugging Face checkpoint. */
export interface HfVit {
  /** The model (base frozen, fresh LoRA from `rng`). */
  vit: Vit;
  /** Everything read from the directory except the weights. */
  checkpoint: Omit<HfVitCheckpoint, "weights">;
}

/**
 * Load a Hugging Face ViT checkpoint into the project's ViT
 * (`createVit(config, { weights })`): frozen base, LoRA on q and v of
 * `loraBlocks` drawn from `rng`.
 *
 * @example
 * ```ts ignore
 * import { Rng } from "../random.ts";
 * import { loadHfVit } from "./hf_vit.ts";
 * const { vit, checkpoint } = await loadHfVit("models/vit-b16", {
 *   lora: { rank: 8, alpha: 32, dropout: 0.1 },
 *   loraBlocks: [0, 1, 2, 3, 4],
 *   rng: new Rng(0),
 * });
 * console.log(checkpoint.memory.parameters, vit.loraSites().length); // 85798656 10
 * ```
 */
export async function loadHfVit(
  dir: string,
  options: ReadHfVitOptions & { rng: Rng },
): Promise<HfVit> {
  const { weights, ...checkpoint } = await readHfVitCheckpoint(dir, options);
  const vit = createVit(checkpoint.config, { rng: options.rng, weights });
  return { vit, checkpoint };
}

/**
 * A classifier on a Hugging Face ViT checkpoint: `createVitClassifier` with
 * the checkpoint's weights (frozen) and a fresh head and LoRA from `rng`,
 * whose `logits` first resize the (already normalised) input images to the
 * checkpoint's `image_size` ({@link resizeImages}). Feed it 32×32 CIFAR
 * batches normalised with `checkpoint.preprocessing.mean/std`.
 *
 * @example
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../random.ts";
 * import { createHfVitClassifier, readHfVitCheckpoint } from "./hf_vit.ts";
 * const ckpt = await readHfVitCheckpoint("models/vit-b16", {});
 * const model = createHfVitClassifier(ckpt, { numOutputs: 100, rng: new Rng(0) });
 * const logits = model.logits(tf.zeros([2, 32, 32, 3]) as tf.Tensor4D, { training: false }); // [2, 100]
 * ```
 */
export function createHfVitClassifier(
  checkpoint: Pick<HfVitCheckpoint, "config" | "weights">,
  options: { numOutputs: number; rng: Rng },
): VitClassifier {
  const inner = createVitClassifier(checkpoint.config, {
    numOutputs: options.numOutputs,
    rng: options.rng,
    baseWeights: checkpoint.weights,
  });
  const size = checkpoint.config.imageSize;
  return {
    ...inner,
    // Every entry point that takes images resizes them to the checkpoint's size.
    logits: (x, o) => tf.tidy(() => inner.logits(resizeImages(x, { size }), o)),
    features: (x, o) => tf.tidy(() => inner.features!(resizeImages(x, { size }), o)),
    promptedLogits: (x, o) => tf.tidy(() => inner.promptedLogits!(resizeImages(x, { size }), o)),
    queryFeatures: (x) => tf.tidy(() => inner.queryFeatures!(resizeImages(x, { size }))),
  };
}
