/**
 * LoRA adapters on disk in the format of Hugging Face PEFT, so an adapter
 * trained here loads in Python (`PeftModel.from_pretrained`) on the same
 * base checkpoint, and back.
 *
 * A directory holds
 *
 * - `adapter_config.json`: `peft_type: "LORA"`, `r`, `lora_alpha`,
 *   `lora_dropout`, `target_modules`, `base_model_name_or_path`,
 *   `layers_to_transform` / `layers_pattern` (when LoRA sits on some layers
 *   only), `task_type`, `bias: "none"`, `fan_in_fan_out: false`,
 *   `modules_to_save` and PEFT's other defaults;
 * - `adapter_model.safetensors`: per adapted module
 *   `base_model.model.<module path>.lora_A.weight` [r, in] and
 *   `….lora_B.weight` [out, r] (PEFT drops the adapter name `default`), plus
 *   `base_model.model.classifier.{weight,bias}` when a head is saved
 *   (`modules_to_save: ["classifier"]`).
 *
 * Module paths follow the `transformers` models the checkpoints come from
 * (see `hf_vit.ts`, `hf_decoder.ts`):
 *
 * | project site       | PEFT module path                                  | target_modules |
 * | ------------------ | ------------------------------------------------- | -------------- |
 * | `blocks.{i}.attn.q` | `vit.encoder.layer.{i}.attention.attention.query` | `query`        |
 * | `blocks.{i}.attn.v` | `vit.encoder.layer.{i}.attention.attention.value` | `value`        |
 * | `layers.{i}.attn.q` | `model.layers.{i}.self_attn.q_proj`               | `q_proj`       |
 * | `layers.{i}.attn.v` | `model.layers.{i}.self_attn.v_proj`               | `v_proj`       |
 *
 * The update is the same on both sides: y = W·x + (lora_alpha / r)·B·A·drop(x)
 * (PEFT without rsLoRA/DoRA). Loading checks everything before assigning
 * anything: `peft_type`, `r` against the sites' rank, `lora_alpha / r`
 * against the model's scale, every site's two tensors present with their
 * shapes, and no tensor for a module the model has no site on.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "@std/path";
import { readJson, writeJsonAtomic } from "../io.ts";
import type { LoraConfig, LoraSite } from "./backbone.ts";
import { loraScale } from "./lora.ts";
import { loadWeights, saveWeights, type TensorData } from "./safetensors.ts";
import type { Variable } from "../tensor.ts";

/**
 * Name of the adapter weights file.
 *
 * @example
 * ```ts
 * import { ADAPTER_WEIGHTS_FILE } from "./peft_adapter.ts";
 * console.log(ADAPTER_WEIGHTS_FILE); // "adapter_model.safetensors"
 * ```
 */
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

/**
 * Name of the adapter config file.
 *
 * @example
 * ```ts
 * import { ADAPTER_CONFIG_FILE } from "./peft_adapter.ts";
 * console.log(ADAPTER_CONFIG_FILE); // "adapter_config.json"
 * ```
 */
export const ADAPTER_CONFIG_FILE = "adapter_config.json";

/** What an adapter is saved from and loaded into: a ViT or a decoder (or a model holding one). */
export interface AdapterModel {
  /** The config the model was built with; `lora` sets rank, alpha and dropout. */
  readonly config: { lora: LoraConfig };
  /** LoRA sites in their fixed order. */
  loraSites(): LoraSite[];
}

/** A classifier head saved as PEFT's `modules_to_save: ["classifier"]`. */
export interface AdapterHead {
  /** Weight [dim, classes] (the project's layout; saved transposed as [classes, dim]). */
  weight: Variable;
  /** Bias [classes]. */
  bias: Variable;
}

/** The fields of `adapter_config.json` this module writes and checks. */
export interface PeftLoraConfig {
  /** `"LORA"`. */
  peft_type: string;
  /** `"CAUSAL_LM"` for a decoder, null for a ViT (PEFT's image-classification recipes set none). */
  task_type: string | null;
  /** Where the base model comes from (a Hub id or a path). */
  base_model_name_or_path: string | null;
  /** Rank. */
  r: number;
  /** Alpha (scale = lora_alpha / r). */
  lora_alpha: number;
  /** Dropout on the LoRA input. */
  lora_dropout: number;
  /** Module names LoRA is attached to. */
  target_modules: string[];
  /** Layer indices with LoRA, or null for every layer. */
  layers_to_transform: number[] | null;
  /** The module-list name the layer index follows (`layer` for ViT, `layers` for LLaMA). */
  layers_pattern: string | null;
  /** Modules saved in full beside the adapter (`["classifier"]` with a head). */
  modules_to_save: string[] | null;
  /** Any other field of the file. */
  [key: string]: unknown;
}

interface ModulePath {
  path: string;
  target: string;
  layer: number;
  pattern: string;
  family: "vit" | "llama";
}

/**
 * The PEFT module path of a project LoRA site.
 *
 * @example
 * ```ts
 * import { peftModulePath } from "./peft_adapter.ts";
 * peftModulePath("layers.3.attn.v").path; // "model.layers.3.self_attn.v_proj"
 * peftModulePath("blocks.0.attn.q").path; // "vit.encoder.layer.0.attention.attention.query"
 * ```
 */
export function peftModulePath(siteName: string): ModulePath {
  let m = /^blocks\.(\d+)\.attn\.(q|v)$/.exec(siteName);
  if (m) {
    const target = m[2] === "q" ? "query" : "value";
    return {
      path: `vit.encoder.layer.${m[1]}.attention.attention.${target}`,
      target,
      layer: Number(m[1]),
      pattern: "layer",
      family: "vit",
    };
  }
  m = /^layers\.(\d+)\.attn\.(q|v)$/.exec(siteName);
  if (m) {
    const target = `${m[2]}_proj`;
    return {
      path: `model.layers.${m[1]}.self_attn.${target}`,
      target,
      layer: Number(m[1]),
      pattern: "layers",
      family: "llama",
    };
  }
  throw new Error(
    `no PEFT module path for LoRA site "${siteName}" (expected blocks.{i}.attn.q|v or ` +
      `layers.{i}.attn.q|v)`,
  );
}

/**
 * PEFT's tensor names of a site's A and B.
 *
 * @example
 * ```ts
 * import { peftTensorNames } from "./peft_adapter.ts";
 * peftTensorNames("layers.0.attn.q").a; // "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
 * ```
 */
export function peftTensorNames(siteName: string): { a: string; b: string } {
  const { path } = peftModulePath(siteName);
  return {
    a: `base_model.model.${path}.lora_A.weight`,
    b: `base_model.model.${path}.lora_B.weight`,
  };
}

const HEAD_WEIGHT = "base_model.model.classifier.weight";
const HEAD_BIAS = "base_model.model.classifier.bias";

function checkSites(sites: LoraSite[], where: string): void {
  if (sites.length === 0) throw new Error(`${where}: the model has no LoRA sites`);
  for (const s of sites) {
    if (s.pool && s.pool.length > 0) {
      throw new Error(
        `${where}: site ${s.name} carries ${s.pool.length} pooled adapter(s); PEFT's format ` +
          `holds one adapter per module`,
      );
    }
  }
}

/** Options of {@link saveAdapter}. */
export interface SaveAdapterOptions {
  /** `base_model_name_or_path`: the Hub id or directory of the base checkpoint. */
  baseModel: string | null;
  /** `task_type` (default `"CAUSAL_LM"` for a decoder, null for a ViT). */
  taskType?: string | null;
  /** A classifier head to save as `modules_to_save: ["classifier"]`. */
  head?: AdapterHead;
  /** Extra `__metadata__` strings for the safetensors file. */
  metadata?: Record<string, string>;
}

/**
 * Save a model's LoRA adapters as a PEFT adapter directory
 * (`adapter_config.json` + `adapter_model.safetensors`). Returns the two paths.
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { createDecoder, DECODER_PRESETS } from "./decoder.ts";
 * import { saveAdapter } from "./peft_adapter.ts";
 * const lm = createDecoder(DECODER_PRESETS["byte-micro"], { rng: new Rng(0) });
 * const dir = await Deno.makeTempDir();
 * await saveAdapter(dir, lm, { baseModel: "byte-micro" });
 * lm.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveAdapter(
  dir: string,
  model: AdapterModel,
  options: SaveAdapterOptions,
): Promise<{ config: string; weights: string }> {
  const sites = model.loraSites();
  checkSites(sites, `saveAdapter ${dir}`);
  const lora = model.config.lora;
  loraScale(lora);
  const paths = sites.map((s) => peftModulePath(s.name));
  const families = new Set(paths.map((p) => p.family));
  if (families.size !== 1) throw new Error(`saveAdapter ${dir}: sites of mixed model families`);
  const family = paths[0].family;
  const tensors = new Map<string, TensorData>();
  for (const s of sites) {
    if (s.a.shape[0] !== lora.rank) {
      throw new Error(
        `saveAdapter ${dir}: site ${s.name} has rank ${
          s.a.shape[0]
        }, config.lora.rank is ${lora.rank}`,
      );
    }
    const names = peftTensorNames(s.name);
    tensors.set(names.a, { shape: s.a.shape.slice(), data: (await s.a.data()) as Float32Array });
    tensors.set(names.b, { shape: s.b.shape.slice(), data: (await s.b.data()) as Float32Array });
  }
  if (options.head) {
    const w = tf.tidy(() => tf.transpose(options.head!.weight));
    tensors.set(HEAD_WEIGHT, { shape: w.shape.slice(), data: (await w.data()) as Float32Array });
    w.dispose();
    const b = options.head.bias;
    tensors.set(HEAD_BIAS, { shape: b.shape.slice(), data: (await b.data()) as Float32Array });
  }
  const layers = [...new Set(paths.map((p) => p.layer))].sort((a, b) => a - b);
  const allLayers = allLayerCount(model);
  const everyLayer = allLayers !== undefined && layers.length === allLayers &&
    layers.every((l, i) => l === i);
  const config: PeftLoraConfig = {
    peft_type: "LORA",
    task_type: options.taskType !== undefined
      ? options.taskType
      : (family === "llama" ? "CAUSAL_LM" : null),
    base_model_name_or_path: options.baseModel,
    revision: null,
    r: lora.rank,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: [...new Set(paths.map((p) => p.target))],
    layers_to_transform: everyLayer ? null : layers,
    layers_pattern: everyLayer ? null : paths[0].pattern,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    rank_pattern: {},
    alpha_pattern: {},
    modules_to_save: options.head ? ["classifier"] : null,
  };
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  await saveWeights(weightsPath, tensors, { metadata: { format: "pt", ...options.metadata } });
  await writeJsonAtomic(configPath, config);
  return { config: configPath, weights: weightsPath };
}

/** Number of blocks/layers of a ViT or decoder config, when it says. */
function allLayerCount(model: AdapterModel): number | undefined {
  const c = model.config as { depth?: number; layers?: number };
  return c.depth ?? c.layers;
}

/**
 * Read and check `adapter_config.json`.
 *
 * @example
 * ```ts ignore
 * import { readAdapterConfig } from "./peft_adapter.ts";
 * const c = await readAdapterConfig("adapters/task-03");
 * console.log(c.r, c.lora_alpha, c.target_modules);
 * ```
 */
export async function readAdapterConfig(dir: string): Promise<PeftLoraConfig> {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  const c = await readJson<Record<string, unknown>>(path);
  const bad = (msg: string): never => {
    throw new Error(`${path}: ${msg}`);
  };
  if (c === null || typeof c !== "object" || Array.isArray(c)) bad("expected a JSON object");
  if (c.peft_type !== "LORA") bad(`peft_type is ${JSON.stringify(c.peft_type)}, expected "LORA"`);
  if (typeof c.r !== "number" || !Number.isInteger(c.r) || c.r <= 0) {
    bad(`field "r" must be a positive integer, got ${JSON.stringify(c.r)}`);
  }
  if (typeof c.lora_alpha !== "number" || !Number.isFinite(c.lora_alpha)) {
    bad(`field "lora_alpha" must be a number, got ${JSON.stringify(c.lora_alpha)}`);
  }
  for (const k of ["use_rslora", "use_dora"]) {
    if (c[k] === true) {
      bad(`field "${k}" is true; only plain LoRA (scale lora_alpha / r) is supported`);
    }
  }
  for (const k of ["rank_pattern", "alpha_pattern"]) {
    const v = c[k];
    if (v !== undefined && v !== null && Object.keys(v as object).length > 0) {
      bad(`field "${k}" is not empty; per-module ranks or alphas are not supported`);
    }
  }
  if (c.fan_in_fan_out === true) bad(`field "fan_in_fan_out" is true; expected [out, in] weights`);
  if (c.bias !== undefined && c.bias !== "none") {
    bad(`field "bias" is ${JSON.stringify(c.bias)}; only "none" is supported`);
  }
  return {
    task_type: null,
    base_model_name_or_path: null,
    lora_dropout: 0,
    target_modules: [],
    layers_to_transform: null,
    layers_pattern: null,
    modules_to_save: null,
    ...c,
  } as unknown as PeftLoraConfig;
}

/** What {@link loadAdapter} did. */
export interface LoadAdapterReport {
  /** The adapter config read. */
  config: PeftLoraConfig;
  /** Sites assigned, in the model's order. */
  sites: string[];
  /** Whether a classifier head was assigned. */
  head: boolean;
}

/**
 * Load a PEFT adapter directory into a model's LoRA sites (and, with
 * `head`, the classifier of `modules_to_save`). Every check runs before
 * anything is assigned; errors name the file, the tensor and what was
 * expected. The model's scale must equal `lora_alpha / r` (it is fixed when
 * the model is built: build it with the adapter's `r` and `lora_alpha`).
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { createDecoder, DECODER_PRESETS } from "./decoder.ts";
 * import { loadAdapter, saveAdapter } from "./peft_adapter.ts";
 * const a = createDecoder(DECODER_PRESETS["byte-micro"], { rng: new Rng(1) });
 * const b = createDecoder(DECODER_PRESETS["byte-micro"], { rng: new Rng(2) });
 * const dir = await Deno.makeTempDir();
 * await saveAdapter(dir, a, { baseModel: null });
 * const report = await loadAdapter(dir, b); // b's LoRA now equals a's
 * a.dispose();
 * b.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadAdapter(
  dir: string,
  model: AdapterModel,
  options: { head?: AdapterHead } = {},
): Promise<LoadAdapterReport> {
  const config = await readAdapterConfig(dir);
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const sites = model.loraSites();
  checkSites(sites, `loadAdapter ${dir}`);
  const scale = loraScale(model.config.lora);
  const fileScale = config.lora_alpha / config.r;
  if (Math.abs(fileScale - scale) > 1e-9 * Math.max(1, Math.abs(scale))) {
    throw new Error(
      `${configPath}: lora_alpha ${config.lora_alpha} / r ${config.r} = ${fileScale}, but the ` +
        `model was built with scale ${scale} (alpha ${model.config.lora.alpha}, rank ` +
        `${model.config.lora.rank}); build it with lora { rank: ${config.r}, alpha: ${config.lora_alpha} }`,
    );
  }
  const { tensors } = await loadWeights(weightsPath);
  const used = new Set<string>();
  const plan: { site: LoraSite; a: TensorData; b: TensorData }[] = [];
  const shapeError = (name: string, got: number[], want: number[]) =>
    new Error(`${weightsPath}: tensor "${name}" has shape [${got}], expected [${want}]`);
  for (const site of sites) {
    const names = peftTensorNames(site.name);
    const a = tensors.get(names.a);
    const b = tensors.get(names.b);
    for (const [name, t] of [[names.a, a], [names.b, b]] as const) {
      if (!t) {
        throw new Error(
          `${weightsPath}: no tensor "${name}" for the model's LoRA site ${site.name}`,
        );
      }
    }
    const wantA = [config.r, site.dIn];
    const wantB = [site.dOut, config.r];
    if (a!.shape.join() !== wantA.join()) throw shapeError(names.a, a!.shape, wantA);
    if (b!.shape.join() !== wantB.join()) throw shapeError(names.b, b!.shape, wantB);
    if (site.a.shape[0] !== config.r) {
      throw new Error(
        `${configPath}: r is ${config.r}, but the model's site ${site.name} has rank ${
          site.a.shape[0]
        }; build the model with lora.rank ${config.r}`,
      );
    }
    used.add(names.a);
    used.add(names.b);
    plan.push({ site, a: a!, b: b! });
  }
  let head: { w: TensorData; b: TensorData } | undefined;
  if (options.head) {
    const w = tensors.get(HEAD_WEIGHT);
    const b = tensors.get(HEAD_BIAS);
    if (!w || !b) {
      throw new Error(
        `${weightsPath}: a head was requested but "${HEAD_WEIGHT}" / "${HEAD_BIAS}" are missing ` +
          `(modules_to_save is ${JSON.stringify(config.modules_to_save)})`,
      );
    }
    const [dim, classes] = options.head.weight.shape;
    if (w.shape.join() !== [classes, dim].join()) {
      throw shapeError(HEAD_WEIGHT, w.shape, [classes, dim]);
    }
    if (b.shape.join() !== [classes].join()) throw shapeError(HEAD_BIAS, b.shape, [classes]);
    used.add(HEAD_WEIGHT);
    used.add(HEAD_BIAS);
    head = { w, b };
  }
  const extra = [...tensors.keys()].filter((n) =>
    !used.has(n) && !(n === HEAD_WEIGHT || n === HEAD_BIAS)
  );
  if (extra.length > 0) {
    throw new Error(
      `${weightsPath}: ${extra.length} tensor(s) target modules the model has no LoRA site on: ${
        extra.slice(0, 5).join(", ")
      }${extra.length > 5 ? ", …" : ""} (the model's sites: ${
        sites.map((s) => s.name).join(", ")
      })`,
    );
  }
  for (const { site, a, b } of plan) {
    tf.tidy(() => {
      site.a.assign(tf.tensor(a.data, a.shape, "float32"));
      site.b.assign(tf.tensor(b.data, b.shape, "float32"));
    });
  }
  if (head && options.head) {
    const { w, b } = head;
    const h = options.head;
    tf.tidy(() => {
      h.weight.assign(tf.transpose(tf.tensor(w.data, w.shape, "float32")));
      h.bias.assign(tf.tensor(b.data, b.shape, "float32"));
    });
  }
  return { config, sites: plan.map((p) => p.site.name), head: head !== undefined };
}
