/**
 * File output that never leaves a half-written file behind.
 *
 * Every result the harness writes goes through {@link writeFileAtomic}: the
 * bytes go to a temporary file in the same directory, which is then renamed
 * over the target (rename is atomic within one file system). A run killed
 * mid-write leaves either the old file or the new one, never a torn one.
 *
 * Inside {@link withWriteRoots} (the experiments and the report run in it),
 * every write is checked first by {@link assertWritable}: the path must lie
 * under one of the roots, and no folder between the root and the file, nor
 * the file itself, may be a symbolic link, so that a link planted in a
 * results folder cannot redirect output elsewhere.
 *
 * @module
 */

import { dirname, join, relative, resolve, SEPARATOR } from "@std/path";

/** The active write roots (absolute), innermost last; empty = no restriction. */
const rootStack: string[][] = [];

/**
 * Run `fn` with writes restricted to `roots`: every {@link writeFileAtomic} (and
 * {@link removeInside}) inside it is checked by {@link assertWritable}. Nested calls replace the
 * roots for their duration.
 *
 * @example
 * ```ts
 * import { withWriteRoots, writeFileAtomic } from "./io.ts";
 * await withWriteRoots(["/tmp"], () => writeFileAtomic("/tmp/treelora-io.txt", "ok\n"));
 * ```
 */
export async function withWriteRoots<T>(
  roots: readonly string[],
  fn: () => Promise<T>,
): Promise<T> {
  rootStack.push(roots.map((r) => resolve(r)));
  try {
    return await fn();
  } finally {
    rootStack.pop();
  }
}

/**
 * Throw unless `path` may be written under the active write roots (see
 * {@link withWriteRoots}; no roots = no check): it must lie under a root, and no existing path
 * component below the root (the folders and the file) may be a symbolic link. The error names
 * the path refused and why.
 *
 * @example
 * ```ts
 * import { assertWritable, withWriteRoots } from "./io.ts";
 * await withWriteRoots(["/tmp/results"], () => assertWritable("/tmp/results/a/b.csv"));
 * ```
 */
export async function assertWritable(path: string): Promise<void> {
  const roots = rootStack.at(-1);
  if (!roots) return;
  const abs = resolve(path);
  const root = roots.find((r) =>
    abs === r || abs.startsWith(r.endsWith(SEPARATOR) ? r : r + SEPARATOR)
  );
  if (!root) {
    throw new Error(`refusing to write ${path}: it lies outside ${roots.join(" and ")}`);
  }
  let current = root;
  for (const part of relative(root, abs).split(SEPARATOR).filter((p: string) => p !== "")) {
    current = join(current, part);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(current);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    if (info.isSymlink) {
      throw new Error(
        `refusing to write ${path}: ${current} is a symbolic link (outputs are never written ` +
          `through links; they stay under ${root})`,
      );
    }
  }
}

/**
 * Check that `name` is one safe path segment (a run folder or experiment name): letters,
 * digits and `._+=@,-`, starting with a letter or digit, at most 200 characters; no
 * separators, `..` or control characters. Returns it.
 *
 * @example
 * ```ts
 * import { safeSegment } from "./io.ts";
 * safeSegment("default", "--out"); // "default"
 * ```
 */
export function safeSegment(name: string, what: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+=@,-]{0,199}$/.test(name)) {
    throw new Error(
      `${what} must be one folder name (letters, digits and ._+=@,- , starting with a letter ` +
        `or digit, at most 200 characters; no / or ..), got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/**
 * Remove `path` (recursively) after {@link assertWritable} allowed it. Links inside are removed,
 * never followed.
 */
export async function removeInside(path: string): Promise<void> {
  await assertWritable(path);
  await Deno.remove(path, { recursive: true });
}

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
  await assertWritable(path);
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

/**
 * The SHA-256 of bytes or text, as 64 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./io.ts";
 * await sha256Hex("abc"); // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
