/**
 * The augmentations a small ViT needs at 32×32 when it is trained from
 * scratch (pre-training): random crop with zero padding and horizontal flip,
 * the standard CIFAR recipe (pad 4, crop back to 32×32, flip with
 * probability ½). They act on normalised NHWC float batches as
 * `imageBatch` (batches.ts) makes them and return a new array.
 *
 * Padding is with zeros of the normalised image (the per-channel mean of the
 * normalisation), as torchvision's `RandomCrop(32, padding=4)` applied after
 * `Normalize` would fill them; applied to raw pixels first it would fill
 * black. The offsets and flips are drawn from the given {@link Rng} in a fixed
 * order (per image: dy, dx, flip), so a seed gives the same batch on every
 * machine.
 *
 * @module
 */

import type { Rng } from "../random.ts";

/** Options of {@link augmentBatch}. */
export interface AugmentOptions {
  /** Zero padding on each side before the random crop (0 = no crop). */
  padding: number;
  /** Flip each image left–right with probability ½. */
  flip: boolean;
}

/**
 * One image [size, size, channels] (NHWC, row-major) shifted as a crop of its zero-padded
 * version at offset (dy, dx) ∈ [0, 2·padding]²: output pixel (y, x) is input pixel
 * (y + dy − padding, x + dx − padding), or 0 outside the image. Then flipped left–right
 * when `flip`.
 *
 * @example
 * ```ts
 * import { cropAndFlip } from "./augment.ts";
 * // A 2×2 one-channel image [[1, 2], [3, 4]], padding 1, offset (0, 0): shifted down-right.
 * cropAndFlip(Float32Array.of(1, 2, 3, 4), { size: 2, channels: 1, padding: 1, dy: 0, dx: 0, flip: false });
 * // Float32Array [0, 0, 0, 1]
 * ```
 */
export function cropAndFlip(
  image: Float32Array,
  options: {
    size: number;
    channels: number;
    padding: number;
    dy: number;
    dx: number;
    flip: boolean;
  },
): Float32Array {
  const { size, channels: c, padding, dy, dx, flip } = options;
  if (image.length !== size * size * c) {
    throw new Error(`cropAndFlip: expected ${size}×${size}×${c} values, got ${image.length}`);
  }
  if (!(dy >= 0 && dy <= 2 * padding && dx >= 0 && dx <= 2 * padding)) {
    throw new RangeError(
      `cropAndFlip: offset (${dy}, ${dx}) outside [0, ${2 * padding}] for padding ${padding}`,
    );
  }
  const out = new Float32Array(image.length);
  for (let y = 0; y < size; y++) {
    const sy = y + dy - padding;
    if (sy < 0 || sy >= size) continue;
    for (let x = 0; x < size; x++) {
      const sx = x + dx - padding;
      if (sx < 0 || sx >= size) continue;
      const ox = flip ? size - 1 - x : x;
      const from = (sy * size + sx) * c;
      const to = (y * size + ox) * c;
      for (let k = 0; k < c; k++) out[to + k] = image[from + k];
    }
  }
  return out;
}

/**
 * Augment a batch x [B, size, size, channels] (NHWC): per image, draw dy, dx uniformly in
 * [0, 2·padding] and a flip with probability ½ from `rng` (in that order), and apply
 * {@link cropAndFlip}. Returns a new array; `x` is not changed.
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { augmentBatch } from "./augment.ts";
 * const x = new Float32Array(2 * 32 * 32 * 3).fill(1);
 * const y = augmentBatch(x, [2, 32, 32, 3], { padding: 4, flip: true }, new Rng(0));
 * ```
 */
export function augmentBatch(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  options: AugmentOptions,
  rng: Rng,
): Float32Array {
  const [b, h, w, c] = shape;
  if (h !== w) throw new Error(`augmentBatch: square images expected, got ${h}×${w}`);
  if (x.length !== b * h * w * c) {
    throw new Error(`augmentBatch: expected ${b}×${h}×${w}×${c} values, got ${x.length}`);
  }
  if (!Number.isInteger(options.padding) || options.padding < 0 || options.padding >= h) {
    throw new RangeError(
      `augmentBatch: padding must be an integer in [0, ${h}), got ${options.padding}`,
    );
  }
  const per = h * w * c;
  const out = new Float32Array(x.length);
  for (let i = 0; i < b; i++) {
    const dy = options.padding > 0 ? rng.int(2 * options.padding + 1) : 0;
    const dx = options.padding > 0 ? rng.int(2 * options.padding + 1) : 0;
    const flip = options.flip ? rng.next() < 0.5 : false;
    out.set(
      cropAndFlip(x.subarray(i * per, (i + 1) * per), {
        size: h,
        channels: c,
        padding: options.padding,
        dy,
        dx,
        flip,
      }),
      i * per,
    );
  }
  return out;
}
