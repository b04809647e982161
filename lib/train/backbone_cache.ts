/**
 * The pre-trained-backbone cache shared by the ViT and the language-model
 * pre-training: `<cacheDir>/backbones/<kind>-<hash>.safetensors`, keyed by a
 * hash of the architecture and the pre-training settings, holding the base
 * weights plus string metadata, including the JSON `report` of the run that
 * made them. A second run with the same key loads the file instead of
 * training.
 *
 * @module
 */

import { join } from "@std/path";
import { hashJson } from "../data/synthetic_cache.ts";
import { exists } from "../io.ts";
import { loadWeights, saveWeights, type TensorData } from "../models/safetensors.ts";
import type { Variable } from "../tensor.ts";

/** Base weights from the cache or from a fresh run, with the run's report. */
export interface CachedBackbone<R> {
  /** Base weights by name. */
  weights: Map<string, TensorData>;
  /** The cache file. */
  path: string;
  /** True when loaded from the cache. */
  cached: boolean;
  /** The report of the run that made the weights. */
  report: R;
}

/**
 * The cache path of a backbone: `<cacheDir>/backbones/<kind>-<hash of key>.safetensors`.
 *
 * @example
 * ```ts
 * import { backbonePath } from "./backbone_cache.ts";
 * const path = await backbonePath(".cache", { kind: "decoder", key: { v: 1, dim: 128 } });
 * ```
 */
export async function backbonePath(
  cacheDir: string,
  options: { kind: string; key: unknown },
): Promise<string> {
  return join(cacheDir, "backbones", `${options.kind}-${await hashJson(options.key)}.safetensors`);
}

/**
 * Load the weights at `path` if the file exists and carries a report;
 * otherwise run `build`, save its weights with `metadata` and the report
 * (metadata key `report`, JSON), and return them.
 *
 * @example
 * ```ts ignore
 * const pre = await cachedBackbone(path, {
 *   metadata: { format: "treelora-decoder-base" },
 *   build: async () => ({ weights, report: { seconds: 1 } }),
 * });
 * ```
 */
export async function cachedBackbone<R>(
  path: string,
  options: {
    metadata: Record<string, string>;
    build: () => Promise<{ weights: Map<string, TensorData>; report: R }>;
  },
): Promise<CachedBackbone<R>> {
  if (await exists(path)) {
    const loaded = await loadWeights(path);
    const report = JSON.parse(loaded.metadata.report ?? "null") as R | null;
    if (report !== null) return { weights: loaded.tensors, path, cached: true, report };
  }
  const { weights, report } = await options.build();
  await saveWeights(path, weights, {
    metadata: { ...options.metadata, report: JSON.stringify(report) },
  });
  return { weights, path, cached: false, report };
}

/**
 * Read named variables back into plain arrays (for saving).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readVariables } from "./backbone_cache.ts";
 * const v = tf.variable(tf.ones([2]));
 * const plain = await readVariables(new Map([["w", v]])); // w → { shape: [2], data: [1, 1] }
 * v.dispose();
 * ```
 */
export async function readVariables(
  variables: Map<string, Variable>,
): Promise<Map<string, TensorData>> {
  const out = new Map<string, TensorData>();
  for (const [name, v] of variables) {
    out.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
  }
  return out;
}
