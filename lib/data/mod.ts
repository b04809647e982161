/**
 * The image data layer: CIFAR-100-format I/O, the synthetic image generator,
 * the class-incremental splitter, batch conversion, pre-training augmentation and
 * the pre-training/stream class split.
 *
 * @example
 * ```ts
 * import { generateSyntheticImages, imageBatch, splitClassIncremental } from "./mod.ts";
 * const { train, test } = generateSyntheticImages({ seed: 0, trainPerClass: 2, testPerClass: 1 });
 * const stream = splitClassIncremental(train, test, { orderSeed: 0 });
 * const batch = imageBatch(train, stream.tasks[0].train, { labelToOutput: stream.labelToOutput });
 * console.log(batch.shape); // [20, 32, 32, 3]
 * ```
 *
 * @module
 */

export type { ClassIncrementalStream, ClassTask, ImageSet } from "./task.ts";
export {
  CIFAR100_IMAGE_SIZE,
  CIFAR100_PIXEL_BYTES,
  CIFAR100_RECORD_BYTES,
  encodeCifar100,
  parseCifar100,
  type ParseCifar100Options,
  readCifar100,
  type ReadCifar100Options,
  writeCifar100,
  writeLabelNames,
} from "./cifar100.ts";
export {
  generateSyntheticImages,
  type SyntheticCifarFiles,
  type SyntheticImages,
  type SyntheticImagesOptions,
  type SyntheticUniverse,
  writeSyntheticCifar,
} from "./synthetic_images.ts";
export { type ClassSplitOptions, splitClassIncremental } from "./class_split.ts";
export {
  type ImageBatch,
  imageBatch,
  type ImageBatchOptions,
  shuffledBatches,
  type ShuffledBatchesOptions,
} from "./batches.ts";
export { augmentBatch, type AugmentOptions, cropAndFlip } from "./augment.ts";
export {
  checkDisjoint,
  type PretrainSplit,
  selectClasses,
  splitPretrainClasses,
} from "./pretrain_split.ts";
