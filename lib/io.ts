/**
 * File output that never leaves a half-written file behind.
 *
 * Every result the harness writes goes through {@link writeFileAtomic}: the
 * bytes go to a temporary file in the same directory, which is then renamed
 * over the target (rename is atomic within one file system). A run killed
 * mid-write leaves either the old file or the new one, never a torn one.
 *
 * @module
 */

import { dirname } from "@std/path";

/**
 * Write bytes or text to `path` atomically, creating parent directories.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./io.ts";
 * await writeFileAtomic("/tmp/treelora-example.txt", "hello\n");
 * ```
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`could not write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Write a value as pretty-printed JSON, atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Read and parse a JSON file; errors name the file.
 *
 * @example
 * ```ts
 * import { readJson, writeJsonAtomic } from "./io.ts";
 * await writeJsonAtomic("/tmp/treelora-example.json", { a: 1 });
 * const v = await readJson<{ a: number }>("/tmp/treelora-example.json");
 * ```
 */
export async function readJson<T = unknown>(path: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** True when `path` exists (file or directory). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
