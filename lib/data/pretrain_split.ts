/**
 * A real data set's classes divided into a pre-training set and a
 * continual-learning stream that share no class: the small-scale stand-in
 * for the paper's setting, a backbone pre-trained on real images (iBOT on
 * ImageNet-21K) and a stream of classes it has not been trained on.
 *
 * {@link splitPretrainClasses} draws the division from a seed;
 * {@link checkDisjoint} is the check every run makes before pre-training
 * (and refuses an overlap, naming the classes); {@link selectClasses} cuts
 * the pre-training images out of a set with their labels renumbered
 * 0…k−1, in the order given.
 *
 * @module
 */

import { Rng } from "../random.ts";
import type { ImageSet } from "./task.ts";

/** The division of a data set's classes. */
export interface PretrainSplit {
  /** Fine labels for pre-training, ascending. */
  pretrainClasses: number[];
  /** Fine labels of the continual-learning stream, ascending. */
  streamClasses: number[];
  /** Seed of the division (`new Rng(seed).permutation(numClasses)`; the first k pre-train). */
  seed: number;
}

/**
 * Divide classes 0…numClasses−1: a seeded permutation, its first `pretrainClasses` entries for
 * pre-training and the rest for the stream (both returned ascending).
 *
 * @example
 * ```ts
 * import { splitPretrainClasses } from "./pretrain_split.ts";
 * const s = splitPretrainClasses(100, { pretrainClasses: 50, seed: 0 });
 * s.pretrainClasses.length + s.streamClasses.length; // 100
 * ```
 */
export function splitPretrainClasses(
  numClasses: number,
  options: { pretrainClasses: number; seed: number },
): PretrainSplit {
  const k = options.pretrainClasses;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new RangeError(`splitPretrainClasses: need at least 2 classes, got ${numClasses}`);
  }
  if (!Number.isInteger(k) || k < 1 || k >= numClasses) {
    throw new RangeError(
      `splitPretrainClasses: pretrainClasses must be an integer in [1, ${
        numClasses - 1
      }], got ${k}`,
    );
  }
  const order = new Rng(options.seed).permutation(numClasses);
  const asc = (xs: number[]) => xs.sort((a, b) => a - b);
  const split = {
    pretrainClasses: asc(Array.from(order.slice(0, k))),
    streamClasses: asc(Array.from(order.slice(k))),
    seed: options.seed,
  };
  checkDisjoint(split.pretrainClasses, split.streamClasses);
  return split;
}

/**
 * Throw when a class is both a pre-training and a stream class (naming them all).
 *
 * @example
 * ```ts
 * import { checkDisjoint } from "./pretrain_split.ts";
 * checkDisjoint([0, 1], [2, 3]); // fine
 * // checkDisjoint([0, 1], [1, 2]) throws: "… class 1 is in both …"
 * ```
 */
export function checkDisjoint(
  pretrainClasses: readonly number[],
  streamClasses: readonly number[],
): void {
  const pre = new Set(pretrainClasses);
  const both = [...new Set(streamClasses)].filter((c) => pre.has(c)).sort((a, b) => a - b);
  if (both.length > 0) {
    throw new Error(
      `pre-training and stream classes must be disjoint: class${both.length > 1 ? "es" : ""} ` +
        `${both.join(", ")} ${both.length > 1 ? "are" : "is"} in both (the backbone would ` +
        "have been trained on classes the stream tests)",
    );
  }
}

/**
 * The images of the given classes, labels renumbered to their position in `classes`
 * (coarse labels kept). Class names follow when the set has them.
 *
 * @example
 * ```ts ignore
 * const pre = selectClasses(train, split.pretrainClasses); // fine labels 0…k−1
 * ```
 */
export function selectClasses(set: ImageSet, classes: readonly number[]): ImageSet {
  const position = new Map<number, number>();
  classes.forEach((c, i) => {
    if (position.has(c)) throw new Error(`selectClasses(${set.source}): class ${c} given twice`);
    position.set(c, i);
  });
  const keep: number[] = [];
  for (let i = 0; i < set.count; i++) if (position.has(set.fine[i])) keep.push(i);
  const per = 3 * set.size * set.size;
  const pixels = new Uint8Array(keep.length * per);
  keep.forEach((src, i) => pixels.set(set.pixels.subarray(src * per, (src + 1) * per), i * per));
  const missing = classes.filter((c) => !keep.some((i) => set.fine[i] === c));
  if (missing.length > 0) {
    throw new Error(`selectClasses(${set.source}): no images of class ${missing.join(", ")}`);
  }
  return {
    count: keep.length,
    size: set.size,
    pixels,
    fine: Int32Array.from(keep, (i) => position.get(set.fine[i])!),
    coarse: Int32Array.from(keep, (i) => set.coarse[i]),
    ...(set.fineNames ? { fineNames: classes.map((c) => set.fineNames![c]) } : {}),
    ...(set.coarseNames ? { coarseNames: set.coarseNames } : {}),
    source: `${set.source} (classes ${classes.join(",")})`,
  };
}
