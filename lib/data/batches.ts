/**
 * Mini-batches as plain arrays: normalised NHWC pixels and labels.
 *
 * {@link imageBatch} converts images from the CIFAR planar layout (R, G, B
 * planes) to interleaved NHWC floats `(pixel/255 − mean[c]) / std[c]`; the
 * caller wraps the arrays in tensors. {@link shuffledBatches} draws one
 * shuffle of an index list from a seeded {@link Rng} and cuts it into batches.
 *
 * @module
 */

import type { Rng } from "../random.ts";
import type { ImageSet } from "./task.ts";

/** Options of {@link imageBatch}. */
export interface ImageBatchOptions {
  /** Per-channel (R, G, B) mean subtracted after scaling to [0, 1]. Default 0.5 each. */
  mean?: readonly [number, number, number];
  /** Per-channel (R, G, B) standard deviation divided by. Default 0.5 each. */
  std?: readonly [number, number, number];
  /** Maps a fine label to the returned label (e.g. a stream's head output); -1 entries are errors. Default: the fine label. */
  labelToOutput?: Int32Array;
}

/** A batch of images in NHWC order with labels. */
export interface ImageBatch {
  /** `B × size × size × 3` normalised pixel values, NHWC. */
  x: Float32Array;
  /** One label per image (mapped through `labelToOutput` when given). */
  y: Int32Array;
  /** `[B, size, size, 3]`. */
  shape: [number, number, number, number];
}

/** Options of {@link shuffledBatches}. */
export interface ShuffledBatchesOptions {
  /** Drop the last batch when it is smaller than `batchSize`. Default false. */
  dropLast?: boolean;
}

function checkChannels(values: readonly number[], what: string, positive: boolean): void {
  if (values.length !== 3 || values.some((v) => !Number.isFinite(v) || (positive && v <= 0))) {
    throw new Error(
      `imageBatch: ${what} must be 3 finite numbers${positive ? " > 0" : ""} (R, G, B), ` +
        `got [${values.join(", ")}]`,
    );
  }
}

/**
 * Gather images into a normalised NHWC float batch with their labels.
 *
 * @example
 * ```ts
 * import { imageBatch } from "./batches.ts";
 * const set = {
 *   count: 1,
 *   size: 32,
 *   pixels: new Uint8Array(3072).fill(255),
 *   fine: Int32Array.of(4),
 *   coarse: Int32Array.of(0),
 *   source: "example",
 * };
 * const { x, y, shape } = imageBatch(set, [0]);
 * console.log(shape, x[0], y[0]); // [1, 32, 32, 3] 1 4
 * ```
 */
export function imageBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  options: ImageBatchOptions = {},
): ImageBatch {
  const mean = options.mean ?? [0.5, 0.5, 0.5];
  const std = options.std ?? [0.5, 0.5, 0.5];
  checkChannels(mean, "mean", false);
  checkChannels(std, "std", true);
  const { size } = set;
  const area = size * size;
  const b = indices.length;
  // One lookup table per channel: byte value → normalised float.
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - mean[c]) / std[c];
  }
  const x = new Float32Array(b * area * 3);
  const y = new Int32Array(b);
  const map = options.labelToOutput;
  for (let n = 0; n < b; n++) {
    const index = indices[n];
    if (!Number.isInteger(index) || index < 0 || index >= set.count) {
      throw new Error(
        `imageBatch(${set.source}): index ${index} at batch position ${n} is out of range; ` +
          `expected an integer in 0..${set.count - 1}`,
      );
    }
    const label = set.fine[index];
    if (map) {
      const out = label < map.length ? map[label] : -1;
      if (out < 0) {
        throw new Error(
          `imageBatch(${set.source}): image ${index} (batch position ${n}) has fine label ${label}, ` +
            `which labelToOutput does not map to an output (not in the stream's classes)`,
        );
      }
      y[n] = out;
    } else {
      y[n] = label;
    }
    const src = index * 3 * area;
    const dst = n * area * 3;
    for (let c = 0; c < 3; c++) {
      const plane = src + c * area;
      const l = c * 256;
      for (let p = 0; p < area; p++) x[dst + p * 3 + c] = lut[l + set.pixels[plane + p]];
    }
  }
  return { x, y, shape: [b, size, size, 3] };
}

/**
 * Shuffle `indices` once with `rng` (Fisher–Yates via `rng.shuffle`) and
 * return the batches of that shuffle. The shuffle is drawn when this function
 * is called, not when the batches are iterated, so the order of draws from
 * `rng` does not depend on how the caller consumes the batches.
 *
 * @example
 * ```ts
 * import { shuffledBatches } from "./batches.ts";
 * import { Rng } from "../random.ts";
 * const batches = [...shuffledBatches([0, 1, 2, 3, 4], 2, new Rng(0))];
 * console.log(batches.map((b) => b.length)); // [2, 2, 1]
 * ```
 */
export function shuffledBatches(
  indices: ArrayLike<number>,
  batchSize: number,
  rng: Rng,
  options: ShuffledBatchesOptions = {},
): IterableIterator<Int32Array> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`shuffledBatches: batchSize must be an integer >= 1, got ${batchSize}`);
  }
  const order = Int32Array.from(rng.shuffle(Array.from(indices)));
  const dropLast = options.dropLast ?? false;
  const end = dropLast ? order.length - (order.length % batchSize) : order.length;
  function* cut(): IterableIterator<Int32Array> {
    for (let start = 0; start < end; start += batchSize) {
      yield order.slice(start, Math.min(start + batchSize, end));
    }
  }
  return cut();
}
