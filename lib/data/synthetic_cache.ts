/**
 * Generated data sets cached on disk by a hash of their generator options, so
 * a second run reads the same bytes instead of regenerating them.
 *
 * @module
 */

import { join } from "@std/path";
import { exists, readJson } from "../io.ts";
import { type SyntheticImagesOptions, writeSyntheticCifar } from "./synthetic_images.ts";

/** A cached synthetic data directory. */
export interface SyntheticDataDir {
  /** Directory holding train.bin, test.bin, label names and synthetic.json. */
  dir: string;
  /** True when the files were already there. */
  cached: boolean;
  /** The options written into synthetic.json (the provenance of the data). */
  description: unknown;
}

/** Short hex SHA-256 of a JSON-serialisable value (stable key order not required: callers pass fixed shapes). */
export async function hashJson(value: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Return a directory with synthetic CIFAR-layout data for `options`, generating it on first use.
 *
 * @example
 * ```ts ignore
 * const { dir } = await syntheticDataDir(".cache/data", { seed: 0, trainPerClass: 100, testPerClass: 20 });
 * ```
 */
export async function syntheticDataDir(
  cacheRoot: string,
  options: SyntheticImagesOptions,
): Promise<SyntheticDataDir> {
  const key = await hashJson({ v: 1, ...options });
  const dir = join(cacheRoot, `synthetic-${options.universe ?? "cl"}-${key}`);
  const meta = join(dir, "synthetic.json");
  if (
    await exists(meta) && await exists(join(dir, "train.bin")) &&
    await exists(join(dir, "test.bin"))
  ) {
    return { dir, cached: true, description: await readJson(meta) };
  }
  await writeSyntheticCifar(dir, options);
  return { dir, cached: false, description: await readJson(meta) };
}
