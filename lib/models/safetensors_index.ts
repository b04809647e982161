/**
 * Hugging Face checkpoint directories: one `model.safetensors`, or shards
 * listed in `model.safetensors.index.json`; and the memory a model needs.
 *
 * A sharded checkpoint is a set of safetensors files plus an index
 *
 *     { "metadata": { "total_size": <bytes> },
 *       "weight_map": { "<tensor name>": "model-00001-of-00002.safetensors", … } }
 *
 * naming, for every tensor, the shard that holds it. {@link loadShardedWeights}
 * reads each shard once and checks the index against the shards: a shard
 * that is missing, a tensor the index puts in a shard that lacks it, and a
 * tensor found in two shards are errors naming the index, the shard and the
 * tensor. Tensors a shard holds but the index does not list are ignored, as
 * `transformers` does. {@link saveShardedWeights} writes the same layout.
 *
 * Memory: a model's float32 weights take parameters × 4 bytes.
 * {@link checkModelMemory} refuses a model above a limit before anything is
 * read; the default limit ({@link defaultMaxBytes}) is half the machine's
 * memory when Deno may read it (`--allow-sys=systemMemoryInfo`), else 8 GiB.
 * Loading peaks higher than the weights alone: the file bytes, the decoded
 * float32 arrays and the backend's copy (wasm, tensorflow) coexist until the
 * model is built — about file size + 2 × parameters × 4 bytes.
 *
 * @module
 */

import { dirname, join } from "@std/path";
import { writeJsonAtomic } from "../io.ts";
import {
  type LoadedWeights,
  loadWeights,
  saveWeights,
  type TensorData,
  type TensorMap,
} from "./safetensors.ts";

/**
 * File name of a single-file checkpoint.
 *
 * @example
 * ```ts
 * import { SINGLE_FILE_NAME } from "./safetensors_index.ts";
 * console.log(`expects ${SINGLE_FILE_NAME}`);
 * ```
 */
export const SINGLE_FILE_NAME = "model.safetensors";

/**
 * File name of the index of a sharded checkpoint.
 *
 * @example
 * ```ts
 * import { INDEX_FILE_NAME } from "./safetensors_index.ts";
 * console.log(`or ${INDEX_FILE_NAME} and its shards`);
 * ```
 */
export const INDEX_FILE_NAME = "model.safetensors.index.json";

/** The parsed `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  /** The index's `metadata` object (`total_size` and anything else), `{}` when absent. */
  metadata: Record<string, unknown>;
  /** Tensor name → shard file name (relative to the index's directory). */
  weightMap: Map<string, string>;
}

/** A checkpoint read from a directory or index. */
export interface LoadedCheckpoint extends LoadedWeights {
  /** The files read, in order (the index first when sharded). */
  files: string[];
}

function parseIndex(json: unknown, path: string): SafetensorsIndex {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`${path}: expected a JSON object with "weight_map", got ${typeof json}`);
  }
  const o = json as Record<string, unknown>;
  const map = o.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new Error(`${path}: "weight_map" must be an object of tensor name → shard file`);
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard === "") {
      throw new Error(
        `${path}: weight_map["${name}"] must be a shard file name, got ${JSON.stringify(shard)}`,
      );
    }
    if (shard.includes("/") || shard.includes("\\") || shard === "..") {
      throw new Error(
        `${path}: weight_map["${name}"] = "${shard}" must be a file name in the index's directory`,
      );
    }
    weightMap.set(name, shard);
  }
  const metadata = o.metadata;
  if (metadata !== undefined && (metadata === null || typeof metadata !== "object")) {
    throw new Error(`${path}: "metadata" must be an object when present`);
  }
  return { metadata: (metadata as Record<string, unknown>) ?? {}, weightMap };
}

/**
 * Read and check a `model.safetensors.index.json`.
 *
 * @example
 * ```ts ignore
 * import { readSafetensorsIndex } from "./safetensors_index.ts";
 * const index = await readSafetensorsIndex("models/llama/model.safetensors.index.json");
 * console.log(new Set(index.weightMap.values()).size, "shards");
 * ```
 */
export async function readSafetensorsIndex(path: string): Promise<SafetensorsIndex> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`could not read the shard index ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseIndex(json, path);
}

function listSome(names: string[], max = 5): string {
  return names.length <= max
    ? names.join(", ")
    : `${names.slice(0, max).join(", ")} and ${names.length - max} more`;
}

/**
 * Load every tensor listed in a shard index, reading each shard once.
 * Errors name the index, the shard and the tensor.
 *
 * @example
 * ```ts ignore
 * import { loadShardedWeights } from "./safetensors_index.ts";
 * const { tensors, files } = await loadShardedWeights("models/llama/model.safetensors.index.json");
 * ```
 */
export async function loadShardedWeights(indexPath: string): Promise<LoadedCheckpoint> {
  const index = await readSafetensorsIndex(indexPath);
  const dir = dirname(indexPath);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of index.weightMap) {
    const list = byShard.get(shard) ?? [];
    list.push(name);
    byShard.set(shard, list);
  }
  if (byShard.size === 0) throw new Error(`${indexPath}: weight_map lists no tensors`);
  const shardPaths = [...byShard.keys()].map((s) => join(dir, s));
  const missing: string[] = [];
  for (const [shard, names] of byShard) {
    try {
      await Deno.stat(join(dir, shard));
    } catch {
      missing.push(`${shard} (${names.length} tensors, e.g. ${names[0]})`);
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `${indexPath}: shard file(s) not found in ${dir}: ${missing.join("; ")}`,
    );
  }
  const tensors = new Map<string, TensorData>();
  const metadata: Record<string, string> = {};
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    const loaded = await loadWeights(path);
    const absent = names.filter((n) => !loaded.tensors.has(n));
    if (absent.length > 0) {
      throw new Error(
        `${indexPath}: weight_map puts tensor(s) ${listSome(absent)} in ${shard}, ` +
          `but ${path} does not contain them`,
      );
    }
    for (const n of names) tensors.set(n, loaded.tensors.get(n)!);
    Object.assign(metadata, loaded.metadata);
  }
  // Keep the index's order, which is the order transformers wrote the tensors in.
  const ordered = new Map<string, TensorData>();
  for (const name of index.weightMap.keys()) ordered.set(name, tensors.get(name)!);
  return { tensors: ordered, metadata, files: [indexPath, ...shardPaths] };
}

/**
 * Load a checkpoint directory: `model.safetensors` when present, else the
 * shards of `model.safetensors.index.json`. A directory with neither is an
 * error naming both files (PyTorch `.bin`/`.pth` files must be converted to
 * safetensors first).
 *
 * @example
 * ```ts ignore
 * import { loadCheckpointWeights } from "./safetensors_index.ts";
 * const { tensors, files } = await loadCheckpointWeights("models/vit-b16");
 * ```
 */
export async function loadCheckpointWeights(dir: string): Promise<LoadedCheckpoint> {
  const single = join(dir, SINGLE_FILE_NAME);
  const index = join(dir, INDEX_FILE_NAME);
  if (await isFile(single)) {
    const loaded = await loadWeights(single);
    return { ...loaded, files: [single] };
  }
  if (await isFile(index)) return await loadShardedWeights(index);
  let others: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (/\.(bin|pth|pt|ckpt)$/.test(e.name)) others.push(e.name);
    }
  } catch (err) {
    throw new Error(`could not read the checkpoint directory ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  others = others.sort();
  throw new Error(
    `${dir}: no weights found: expected ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME} with its shards` +
      (others.length > 0
        ? ` (found ${listSome(others)}: PyTorch pickles must be converted to safetensors first)`
        : ""),
  );
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw new Error(`could not stat ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Write tensors as a sharded checkpoint: shards `model-0000k-of-0000n.safetensors`
 * of at most `maxShardBytes` of tensor data each (a tensor larger than that
 * gets a shard of its own), in the given order, plus `model.safetensors.index.json`
 * with `metadata.total_size` (bytes of tensor data, as transformers writes it)
 * and the weight map. Returns the files written, index first.
 *
 * @example
 * ```ts
 * import { saveShardedWeights } from "./safetensors_index.ts";
 * const dir = await Deno.makeTempDir();
 * const files = await saveShardedWeights(dir, new Map([
 *   ["a", { shape: [2], data: new Float32Array([1, 2]) }],
 *   ["b", { shape: [2], data: new Float32Array([3, 4]) }],
 * ]), { maxShardBytes: 8 });
 * // files: index, model-00001-of-00002.safetensors, model-00002-of-00002.safetensors
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveShardedWeights(
  dir: string,
  weights: TensorMap,
  options: { maxShardBytes: number; metadata?: Record<string, string> },
): Promise<string[]> {
  if (!(options.maxShardBytes > 0)) {
    throw new Error(`saveShardedWeights ${dir}: maxShardBytes must be > 0`);
  }
  const list = weights instanceof Map ? [...weights.entries()] : Object.entries(weights);
  if (list.length === 0) throw new Error(`saveShardedWeights ${dir}: no tensors to write`);
  const shards: [string, TensorData][][] = [];
  let current: [string, TensorData][] = [];
  let bytes = 0;
  let total = 0;
  for (const entry of list) {
    const size = entry[1].data.length * 4;
    if (current.length > 0 && bytes + size > options.maxShardBytes) {
      shards.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
    total += size;
  }
  shards.push(current);
  const n = shards.length;
  const pad = (k: number) => String(k).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  for (let k = 0; k < n; k++) {
    const file = `model-${pad(k + 1)}-of-${pad(n)}.safetensors`;
    for (const [name] of shards[k]) weightMap[name] = file;
    const path = join(dir, file);
    await saveWeights(path, new Map(shards[k]), {
      metadata: { format: "pt", ...options.metadata },
    });
    files.push(path);
  }
  const indexPath = join(dir, INDEX_FILE_NAME);
  await writeJsonAtomic(indexPath, { metadata: { total_size: total }, weight_map: weightMap });
  return [indexPath, ...files];
}

// ---------------------------------------------------------------------------
// Memory

/**
 * The limit used when Deno may not read the system's memory: 8 GiB.
 *
 * @example
 * ```ts
 * import { FALLBACK_MAX_BYTES } from "./safetensors_index.ts";
 * console.log(FALLBACK_MAX_BYTES / 2 ** 30); // 8
 * ```
 */
export const FALLBACK_MAX_BYTES: number = 8 * 2 ** 30;

/** A memory limit and where it came from. */
export interface MemoryLimit {
  /** Bytes. */
  bytes: number;
  /** How the limit was set, for messages and config.json. */
  source: string;
}

/**
 * The default limit for a model's float32 weights: half of the machine's
 * total memory when `Deno.systemMemoryInfo()` is permitted
 * (`--allow-sys=systemMemoryInfo`), else {@link FALLBACK_MAX_BYTES}. Half,
 * because loading holds the decoded arrays and the backend's copy at once,
 * and training adds activations and optimiser state.
 *
 * @example
 * ```ts
 * import { defaultMaxBytes } from "./safetensors_index.ts";
 * const { bytes, source } = defaultMaxBytes();
 * console.log(`limit ${bytes} bytes (${source})`);
 * ```
 */
export function defaultMaxBytes(): MemoryLimit {
  let granted = false;
  try {
    granted = Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" }).state ===
      "granted";
  } catch {
    granted = false;
  }
  if (granted) {
    try {
      const total = Deno.systemMemoryInfo().total;
      if (total > 0) {
        return {
          bytes: Math.floor(total / 2),
          source: `half of the ${formatBytes(total)} of system memory (Deno.systemMemoryInfo)`,
        };
      }
    } catch { /* fall through */ }
  }
  return {
    bytes: FALLBACK_MAX_BYTES,
    source: "the 8 GiB default; grant --allow-sys=systemMemoryInfo to use half of the " +
      "machine's memory instead, or pass maxBytes",
  };
}

/**
 * Bytes in binary units with 3 significant digits, e.g. `4.60 GiB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./safetensors_index.ts";
 * formatBytes(344_000_000); // "328 MiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toPrecision(3)} ${units[u]}`;
}

/** What {@link checkModelMemory} found. */
export interface ModelMemory {
  /** Base parameters. */
  parameters: number;
  /** parameters × 4 (float32). */
  bytes: number;
  /** The limit it was checked against. */
  limit: MemoryLimit;
  /** One line stating the above, for the log. */
  statement: string;
}

/**
 * State a model's float32 weight memory (parameters × 4 bytes) and refuse
 * it, with that number, when it exceeds `maxBytes` (default
 * {@link defaultMaxBytes}). Call it before reading any weights.
 *
 * @example
 * ```ts
 * import { checkModelMemory } from "./safetensors_index.ts";
 * const m = checkModelMemory("vit-b16", { parameters: 85_798_656, maxBytes: 2 ** 30 });
 * console.log(m.statement); // "vit-b16: 85,798,656 parameters = 327 MiB as float32 …"
 * ```
 */
export function checkModelMemory(
  label: string,
  options: { parameters: number; maxBytes?: number },
): ModelMemory {
  const { parameters } = options;
  if (!Number.isFinite(parameters) || parameters < 0) {
    throw new Error(`${label}: bad parameter count ${parameters}`);
  }
  const limit: MemoryLimit = options.maxBytes !== undefined
    ? { bytes: options.maxBytes, source: "maxBytes option" }
    : defaultMaxBytes();
  if (!(limit.bytes > 0)) throw new Error(`${label}: maxBytes must be > 0, got ${limit.bytes}`);
  const bytes = parameters * 4;
  const statement = `${label}: ${parameters.toLocaleString("en-US")} parameters = ${
    formatBytes(bytes)
  } as float32 (parameters × 4 bytes); limit ${formatBytes(limit.bytes)} (${limit.source})`;
  if (bytes > limit.bytes) {
    throw new Error(
      `${label} will not fit: ${
        parameters.toLocaleString("en-US")
      } parameters need ${bytes} bytes ` +
        `(${formatBytes(bytes)}) as float32 (parameters × 4 bytes), more than the limit of ` +
        `${limit.bytes} bytes (${formatBytes(limit.bytes)}, ${limit.source})`,
    );
  }
  return { parameters, bytes, limit, statement };
}
