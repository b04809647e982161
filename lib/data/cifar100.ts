/**
 * Reader and writer for the CIFAR-100 binary format.
 *
 * A split is one file (`train.bin` or `test.bin`) holding a sequence of
 * {@link CIFAR100_RECORD_BYTES}-byte records, one per image:
 *
 * | bytes        | content                                   |
 * |--------------|-------------------------------------------|
 * | 0            | coarse (superclass) label, 0–19           |
 * | 1            | fine label, 0–99                          |
 * | 2 … 1025     | red plane, 32×32 row-major                |
 * | 1026 … 2049  | green plane                               |
 * | 2050 … 3073  | blue plane                                |
 *
 * A data directory may also hold `fine_label_names.txt` and
 * `coarse_label_names.txt` (one name per line, line index = label); they are
 * read when present. The same layout is produced by {@link encodeCifar100},
 * so synthetic data and stand-in data sets go through this one reader.
 *
 * @module
 */

import { join } from "@std/path";
import { writeFileAtomic } from "../io.ts";
import type { ImageSet } from "./task.ts";

/**
 * Side length of a CIFAR image in pixels.
 *
 * @example
 * ```ts
 * import { CIFAR100_IMAGE_SIZE } from "./cifar100.ts";
 * const area = CIFAR100_IMAGE_SIZE * CIFAR100_IMAGE_SIZE; // 1024 pixels per plane
 * ```
 */
export const CIFAR100_IMAGE_SIZE: number = 32;

/**
 * Bytes of pixel data per image: 3 planes of 32×32 (3,072).
 *
 * @example
 * ```ts
 * import { CIFAR100_PIXEL_BYTES } from "./cifar100.ts";
 * const pixels = new Uint8Array(10 * CIFAR100_PIXEL_BYTES); // room for 10 images
 * ```
 */
export const CIFAR100_PIXEL_BYTES: number = 3 * CIFAR100_IMAGE_SIZE * CIFAR100_IMAGE_SIZE;

/**
 * Bytes per record: coarse label, fine label, then the pixel planes (3,074).
 *
 * @example
 * ```ts
 * import { CIFAR100_RECORD_BYTES } from "./cifar100.ts";
 * const records = 24_592_000 / CIFAR100_RECORD_BYTES; // 8000
 * ```
 */
export const CIFAR100_RECORD_BYTES: number = 2 + CIFAR100_PIXEL_BYTES;

const LAYOUT = `each a sequence of ${CIFAR100_RECORD_BYTES}-byte records ` +
  `(byte 0 coarse label, byte 1 fine label, then 1024 R, 1024 G, 1024 B bytes, 32×32 row-major)`;

/** Options of {@link parseCifar100}. */
export interface ParseCifar100Options {
  /** Where the bytes came from (a file path or a description); used in error messages and as `ImageSet.source`. */
  source: string;
  /** Number of fine classes; fine labels must lie in 0..numFine-1. Default 100. */
  numFine?: number;
  /** Number of coarse classes; coarse labels must lie in 0..numCoarse-1. Default 20. */
  numCoarse?: number;
  /** Fine class names to attach (index = fine label). */
  fineNames?: string[];
  /** Coarse class names to attach (index = coarse label). */
  coarseNames?: string[];
}

/** Options of {@link readCifar100}. */
export interface ReadCifar100Options {
  /** Which file to read: `train` → `<dir>/train.bin`, `test` → `<dir>/test.bin`. */
  split: "train" | "test";
  /** Number of fine classes; fine labels must lie in 0..numFine-1. Default 100. */
  numFine?: number;
  /** Number of coarse classes; coarse labels must lie in 0..numCoarse-1. Default 20. */
  numCoarse?: number;
}

function checkClassCount(value: number, what: string, source: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 256) {
    throw new Error(`${source}: ${what} must be an integer in 1..256 (one byte), got ${value}`);
  }
}

/**
 * Decode CIFAR-100 records held in memory.
 *
 * The pixels are copied into a fresh contiguous array (labels stripped), so
 * the result does not alias `bytes`. Throws when the length is not a whole
 * number of records, when there are no records, or when a label is out of
 * range (naming the record, the byte and the value).
 *
 * @example
 * ```ts
 * import { parseCifar100 } from "./cifar100.ts";
 * const bytes = new Uint8Array(3074);
 * bytes[0] = 4; // coarse
 * bytes[1] = 30; // fine
 * const set = parseCifar100(bytes, { source: "memory" });
 * console.log(set.count, set.fine[0], set.coarse[0]); // 1 30 4
 * ```
 */
export function parseCifar100(bytes: Uint8Array, options: ParseCifar100Options): ImageSet {
  const { source } = options;
  const numFine = options.numFine ?? 100;
  const numCoarse = options.numCoarse ?? 20;
  checkClassCount(numFine, "numFine", source);
  checkClassCount(numCoarse, "numCoarse", source);
  const remainder = bytes.length % CIFAR100_RECORD_BYTES;
  const count = (bytes.length - remainder) / CIFAR100_RECORD_BYTES;
  if (remainder !== 0) {
    throw new Error(
      `${source}: size ${bytes.length} bytes is not a multiple of the ${CIFAR100_RECORD_BYTES}-byte ` +
        `CIFAR-100 record (${count} whole records + ${remainder} bytes remainder); ` +
        `the file is truncated or not in CIFAR-100 binary layout. Expected ${LAYOUT}.`,
    );
  }
  if (count === 0) {
    throw new Error(`${source}: contains no records (0 bytes); expected ${LAYOUT}.`);
  }
  const pixels = new Uint8Array(count * CIFAR100_PIXEL_BYTES);
  const fine = new Int32Array(count);
  const coarse = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * CIFAR100_RECORD_BYTES;
    const c = bytes[at];
    const f = bytes[at + 1];
    if (c >= numCoarse) {
      throw new Error(
        `${source}: record ${i} (byte offset ${at}): byte 0 (coarse label) is ${c}; ` +
          `expected 0..${numCoarse - 1}`,
      );
    }
    if (f >= numFine) {
      throw new Error(
        `${source}: record ${i} (byte offset ${at}): byte 1 (fine label) is ${f}; ` +
          `expected 0..${numFine - 1}`,
      );
    }
    coarse[i] = c;
    fine[i] = f;
    pixels.set(bytes.subarray(at + 2, at + CIFAR100_RECORD_BYTES), i * CIFAR100_PIXEL_BYTES);
  }
  const set: ImageSet = { count, size: CIFAR100_IMAGE_SIZE, pixels, fine, coarse, source };
  if (options.fineNames) set.fineNames = options.fineNames;
  if (options.coarseNames) set.coarseNames = options.coarseNames;
  return set;
}

async function readLabelNames(path: string, expected: number): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length !== expected) {
    throw new Error(
      `${path}: has ${lines.length} lines; expected ${expected} (one class name per line, line index = label)`,
    );
  }
  lines.forEach((name, i) => {
    if (name.trim() === "") {
      throw new Error(`${path}: line ${i + 1} (label ${i}) is empty; expected a class name`);
    }
  });
  return lines;
}

/**
 * Read one split of a CIFAR-100-layout data directory.
 *
 * Reads `<dir>/train.bin` or `<dir>/test.bin`, plus `fine_label_names.txt` and
 * `coarse_label_names.txt` from the same directory when they exist (their
 * line count must then equal `numFine` / `numCoarse`). `ImageSet.source` is
 * the path of the `.bin` file.
 *
 * @example
 * ```ts
 * import { readCifar100 } from "./cifar100.ts";
 * const dir = "/work/shared/data/tinyimagenet100_32";
 * try {
 *   const train = await readCifar100(dir, { split: "train" });
 *   console.log(train.count, train.fineNames?.[0]);
 * } catch (err) {
 *   console.log((err as Error).message); // names the missing file and the expected layout
 * }
 * ```
 */
export async function readCifar100(dir: string, options: ReadCifar100Options): Promise<ImageSet> {
  const { split } = options;
  if (split !== "train" && split !== "test") {
    throw new Error(`readCifar100(${dir}): split must be "train" or "test", got ${String(split)}`);
  }
  const numFine = options.numFine ?? 100;
  const numCoarse = options.numCoarse ?? 20;
  const path = join(dir, `${split}.bin`);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        `CIFAR-100 file not found: ${path}. Expected a directory with <dir>/train.bin and ` +
          `<dir>/test.bin, ${LAYOUT}.`,
        { cause: err },
      );
    }
    throw new Error(`could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const fineNames = await readLabelNames(join(dir, "fine_label_names.txt"), numFine);
  const coarseNames = await readLabelNames(join(dir, "coarse_label_names.txt"), numCoarse);
  return parseCifar100(bytes, { source: path, numFine, numCoarse, fineNames, coarseNames });
}

/**
 * Encode an image set as CIFAR-100 records (the inverse of {@link parseCifar100}).
 *
 * The set must hold 32×32 images and labels that fit in one byte (0..255).
 *
 * @example
 * ```ts
 * import { encodeCifar100 } from "./cifar100.ts";
 * const bytes = encodeCifar100({
 *   count: 1,
 *   size: 32,
 *   pixels: new Uint8Array(3072),
 *   fine: Int32Array.of(7),
 *   coarse: Int32Array.of(1),
 *   source: "example",
 * });
 * console.log(bytes.length); // 3074
 * ```
 */
export function encodeCifar100(set: ImageSet): Uint8Array {
  const { count, source } = set;
  if (set.size !== CIFAR100_IMAGE_SIZE) {
    throw new Error(
      `encodeCifar100(${source}): image size is ${set.size}; the CIFAR-100 format holds ` +
        `${CIFAR100_IMAGE_SIZE}×${CIFAR100_IMAGE_SIZE} images only`,
    );
  }
  if (!Number.isInteger(count) || count < 0) {
    throw new Error(
      `encodeCifar100(${source}): count must be a non-negative integer, got ${count}`,
    );
  }
  if (set.pixels.length !== count * CIFAR100_PIXEL_BYTES) {
    throw new Error(
      `encodeCifar100(${source}): pixels has ${set.pixels.length} bytes; expected ` +
        `count × ${CIFAR100_PIXEL_BYTES} = ${count * CIFAR100_PIXEL_BYTES}`,
    );
  }
  if (set.fine.length !== count || set.coarse.length !== count) {
    throw new Error(
      `encodeCifar100(${source}): fine has ${set.fine.length} and coarse has ${set.coarse.length} ` +
        `labels; expected ${count} each`,
    );
  }
  const out = new Uint8Array(count * CIFAR100_RECORD_BYTES);
  for (let i = 0; i < count; i++) {
    const c = set.coarse[i];
    const f = set.fine[i];
    if (!(c >= 0 && c <= 255) || !(f >= 0 && f <= 255)) {
      throw new Error(
        `encodeCifar100(${source}): record ${i} has coarse label ${c} and fine label ${f}; ` +
          `expected 0..255 (one byte each)`,
      );
    }
    const at = i * CIFAR100_RECORD_BYTES;
    out[at] = c;
    out[at + 1] = f;
    out.set(
      set.pixels.subarray(i * CIFAR100_PIXEL_BYTES, (i + 1) * CIFAR100_PIXEL_BYTES),
      at + 2,
    );
  }
  return out;
}

/**
 * Write an image set to one CIFAR-100 binary file, atomically.
 *
 * Label name files are not written; see {@link writeLabelNames}.
 *
 * @example
 * ```ts
 * import { readCifar100, writeCifar100 } from "./cifar100.ts";
 * const set = {
 *   count: 1,
 *   size: 32,
 *   pixels: new Uint8Array(3072).fill(9),
 *   fine: Int32Array.of(3),
 *   coarse: Int32Array.of(0),
 *   source: "example",
 * };
 * const dir = await Deno.makeTempDir();
 * await writeCifar100(`${dir}/train.bin`, set);
 * const back = await readCifar100(dir, { split: "train" });
 * console.log(back.fine[0]); // 3
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeCifar100(path: string, set: ImageSet): Promise<void> {
  await writeFileAtomic(path, encodeCifar100(set));
}

/**
 * Write `fine_label_names.txt` and `coarse_label_names.txt` into `dir`
 * (one name per line) for the names a set carries; a missing list is skipped.
 *
 * @example
 * ```ts
 * import { writeLabelNames } from "./cifar100.ts";
 * const dir = await Deno.makeTempDir();
 * await writeLabelNames(dir, { fineNames: ["cat", "dog"], coarseNames: ["pets"] });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeLabelNames(
  dir: string,
  names: { fineNames?: string[]; coarseNames?: string[] },
): Promise<void> {
  const files: [string, string[] | undefined][] = [
    ["fine_label_names.txt", names.fineNames],
    ["coarse_label_names.txt", names.coarseNames],
  ];
  for (const [file, list] of files) {
    if (!list) continue;
    list.forEach((name, i) => {
      if (name.trim() === "" || /[\r\n]/.test(name)) {
        throw new Error(
          `writeLabelNames(${join(dir, file)}): name ${i} is ${JSON.stringify(name)}; ` +
            `expected a non-empty single-line name`,
        );
      }
    });
    await writeFileAtomic(join(dir, file), list.join("\n") + "\n");
  }
}
