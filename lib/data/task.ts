/**
 * The data objects of a class-incremental image stream.
 *
 * An {@link ImageSet} holds raw CIFAR-layout images (uint8, channel planes
 * R, G, B, each 32×32 row-major) with their fine and coarse labels. A
 * {@link ClassIncrementalStream} cuts a train and a test set into tasks of
 * disjoint classes, in a class order that is recorded with the results.
 *
 * @module
 */

/** A set of square RGB images in CIFAR planar layout with labels. */
export interface ImageSet {
  /** Number of images. */
  count: number;
  /** Side length in pixels (32 for CIFAR). */
  size: number;
  /** `count × 3 × size × size` bytes: per image the R plane, then G, then B, each row-major. */
  pixels: Uint8Array;
  /** Fine label of each image (0..numClasses-1). */
  fine: Int32Array;
  /** Coarse (superclass) label of each image. */
  coarse: Int32Array;
  /** Names of the fine classes when known (index = fine label). */
  fineNames?: string[];
  /** Names of the coarse classes when known. */
  coarseNames?: string[];
  /** Where the set came from: a file path or a synthetic generator description. */
  source: string;
}

/** One task of a class-incremental stream. */
export interface ClassTask {
  /** 0-based position in the stream. */
  index: number;
  /** Display name, e.g. `task-3`. */
  name: string;
  /** Original fine labels of the task's classes, in class-order position. */
  classes: number[];
  /** Indices into the stream's train set. */
  train: Int32Array;
  /** Indices into the stream's test set. */
  test: Int32Array;
}

/** A class-incremental stream: tasks of disjoint classes plus the provenance of their order. */
export interface ClassIncrementalStream {
  /** Training images (all tasks). */
  train: ImageSet;
  /** Test images (all tasks). */
  test: ImageSet;
  /** The tasks in training order. */
  tasks: ClassTask[];
  /** Original fine labels in the order they are assigned to head outputs (output k ↔ classOrder[k]). */
  classOrder: number[];
  /** The seed the class order was drawn from, or null for the natural order. */
  orderSeed: number | null;
  /** Maps an original fine label to its head output index (position in classOrder), -1 if unused. */
  labelToOutput: Int32Array;
}
