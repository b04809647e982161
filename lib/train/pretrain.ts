/**
 * Pre-training of the default backbone.
 *
 * No weights can be downloaded, so the harness pre-trains its own backbone:
 * the whole ViT (no LoRA) plus a temporary 100-way head is trained on the
 * synthetic `pretrain` universe — 100 classes generated from a different
 * seed space than the continual-learning classes, so pre-training never sees
 * a CL class. The base weights are then frozen for every CL method, like an
 * ImageNet-pre-trained ViT in the paper.
 *
 * The result is cached in `<cacheDir>/backbones/<hash>.safetensors`, keyed by
 * a hash of the ViT shape and the pre-training config, with the config and
 * the held-out accuracy in the file's metadata; a second run loads it.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "@std/path";
import { readCifar100 } from "../data/cifar100.ts";
import { augmentBatch, type AugmentOptions } from "../data/augment.ts";
import { imageBatch, shuffledBatches } from "../data/batches.ts";
import type { ImageSet } from "../data/task.ts";
import { syntheticDataDir } from "../data/synthetic_cache.ts";
import { createLinearHead } from "../models/linear_head.ts";
import { backbonePath, cachedBackbone, readVariables } from "./backbone_cache.ts";
import { createVit, type VitConfig } from "../models/vit.ts";
import { Rng } from "../random.ts";
import type { Progress } from "./progress.ts";
import { createAdam, optimizerStep } from "./step.ts";
import type { Scalar } from "../tensor.ts";

/** Settings of backbone pre-training. */
export interface PretrainConfig {
  /** Seed of the synthetic pre-training data, the initialisation and the shuffles. */
  seed: number;
  /** Pre-training images per class (100 classes). */
  trainPerClass: number;
  /** Held-out images per class, for the reported pre-training accuracy. */
  testPerClass: number;
  /** Optimiser steps. */
  steps: number;
  /** Batch size. */
  batchSize: number;
  /** Adam learning rate (cosine-decayed to 0 over the steps). */
  lr: number;
  /**
   * Random crop with zero padding and horizontal flip of every training batch
   * (lib/data/augment.ts), drawn from their own generator (seeded with `(seed ^ 0xa06e) >>> 0`,
   * so the shuffles and dropout masks of `seed` are those of an unaugmented run); absent or
   * null = none.
   */
  augment?: AugmentOptions | null;
}

/**
 * Real images to pre-train on instead of the synthetic `pretrain` universe: the pre-training
 * classes of a data set, labels 0…k−1 (lib/data/pretrain_split.ts), and what identifies them
 * for the cache key.
 */
export interface PretrainImages {
  /** Training images of the pre-training classes. */
  train: ImageSet;
  /** Held-out images of the same classes (the reported accuracy). */
  test: ImageSet;
  /** Identity of the data (file hashes and class list): part of the backbone's cache key. */
  identity: Record<string, unknown>;
  /** One line for config.json and the log. */
  description: string;
}

/** What pre-training reports (stored in the cache file's metadata and in config.json). */
export interface PretrainReport {
  /** Accuracy (%) of the pre-trained backbone + temporary head on held-out pre-training images. */
  testAccuracy: number;
  /** Mean training loss over the last 10% of steps. */
  finalLoss: number;
  /** Seconds spent pre-training (of the run that created the cache). */
  seconds: number;
}

/** A pre-trained backbone: named base weights plus provenance. */
export interface PretrainedBackbone {
  /** Base weights by name (no LoRA, no head). */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  /** The cache file. */
  path: string;
  /** True when loaded from the cache. */
  cached: boolean;
  /** Held-out accuracy and timing. */
  report: PretrainReport;
}

function baseShape(config: VitConfig): VitConfig {
  const { loraTargets: _targets, ...rest } = config;
  return { ...rest, loraBlocks: [] };
}

/**
 * Return the pre-trained base weights for `vitConfig`, training and caching them on first use.
 *
 * @example
 * ```ts ignore
 * const pre = await pretrainedBackbone(VIT_PRESETS.tiny, { pretrain, cacheDir: ".cache" });
 * ```
 */
export async function pretrainedBackbone(
  vitConfig: VitConfig,
  options: {
    pretrain: PretrainConfig;
    cacheDir: string;
    progress?: Progress;
    images?: PretrainImages;
  },
): Promise<PretrainedBackbone> {
  const shape = baseShape(vitConfig);
  const { lora: _lora, loraBlocks: _blocks, ...arch } = shape;
  const path = await backbonePath(options.cacheDir, {
    kind: "vit",
    key: {
      v: 1,
      arch,
      pretrain: options.pretrain,
      ...(options.images ? { images: options.images.identity } : {}),
    },
  });
  return await cachedBackbone(path, {
    metadata: {
      format: "treelora-vit-base",
      arch: JSON.stringify(arch),
      pretrain: JSON.stringify(options.pretrain),
      images: options.images?.description ?? "synthetic pretrain universe",
    },
    build: () => pretrain(shape, options),
  });
}

async function pretrainImages(
  p: PretrainConfig,
  cacheDir: string,
): Promise<{ train: ImageSet; test: ImageSet }> {
  const data = await syntheticDataDir(join(cacheDir, "data"), {
    seed: p.seed,
    trainPerClass: p.trainPerClass,
    testPerClass: p.testPerClass,
    universe: "pretrain",
  });
  return {
    train: await readCifar100(data.dir, { split: "train" }),
    test: await readCifar100(data.dir, { split: "test" }),
  };
}

async function pretrain(
  config: VitConfig,
  options: {
    pretrain: PretrainConfig;
    cacheDir: string;
    progress?: Progress;
    images?: PretrainImages;
  },
): Promise<
  { weights: Map<string, { shape: number[]; data: Float32Array }>; report: PretrainReport }
> {
  const p = options.pretrain;
  const t0 = performance.now();
  const { train, test } = options.images ?? await pretrainImages(p, options.cacheDir);
  const numClasses = Math.max(...train.fine) + 1;
  if (train.count < p.batchSize) {
    // Full batches only (dropLast): fewer images than a batch would never make a step.
    throw new Error(
      `pre-training: ${train.count} training images (${train.source}) are fewer than one ` +
        `batch of ${p.batchSize} (the spec's backbone.pretrain.batchSize): give more ` +
        `pre-training classes or a smaller batch`,
    );
  }
  // Augmentation draws come from their own generator, so turning it on leaves the shuffles
  // and dropout masks of the same seed unchanged.
  const augmentRng = p.augment ? new Rng((p.seed ^ 0xa06e) >>> 0) : null;
  const rng = new Rng(p.seed);
  const vit = createVit(config, { rng });
  const head = createLinearHead({ dim: config.dim, numClasses, rng });
  vit.setBaseTrainable(true);
  const variables = [...vit.baseWeights().values(), ...head.variables()];
  const optimizer = createAdam({ lr: p.lr });
  const all = Int32Array.from({ length: train.count }, (_, i) => i);
  const losses: number[] = [];
  let step = 0;
  try {
    while (step < p.steps) {
      for (const idx of shuffledBatches(all, p.batchSize, rng, { dropLast: true })) {
        if (step >= p.steps) break;
        // Cosine decay of the learning rate over the pre-training steps.
        // deno-lint-ignore no-explicit-any
        (optimizer as any).learningRate = p.lr * 0.5 * (1 + Math.cos((Math.PI * step) / p.steps));
        const batch = imageBatch(train, idx);
        if (p.augment && augmentRng) {
          batch.x = augmentBatch(batch.x, batch.shape, p.augment, augmentRng);
        }
        const r = await optimizerStep(variables, () => {
          const x = tf.tensor4d(batch.x, batch.shape);
          const logits = head.logits(vit.features(x, { training: true, seed: rng.seed() }));
          const y = tf.oneHot(tf.tensor1d(batch.y, "int32"), numClasses);
          return { total: tf.losses.softmaxCrossEntropy(y, logits) as Scalar, terms: {} };
        }, { optimizer, clipNorm: 1.0 });
        losses.push(r.total);
        step++;
        const elapsed = (performance.now() - t0) / 1000;
        options.progress?.update({
          label: "pretrain",
          task: 1,
          tasks: 1,
          epoch: 1,
          epochs: 1,
          step,
          steps: p.steps,
          loss: r.total,
          imagesPerSecond: (step * p.batchSize) / elapsed,
          etaSeconds: (elapsed / step) * (p.steps - step),
        });
      }
    }
    let correct = 0;
    for (let b = 0; b < test.count; b += 200) {
      const idx = Int32Array.from({ length: Math.min(200, test.count - b) }, (_, i) => b + i);
      const batch = imageBatch(test, idx);
      const pred = tf.tidy(() =>
        tf.argMax(
          head.logits(vit.features(tf.tensor4d(batch.x, batch.shape), { training: false })),
          1,
        )
      );
      const pv = await pred.data();
      pred.dispose();
      for (let i = 0; i < idx.length; i++) if (pv[i] === batch.y[i]) correct++;
    }
    const weights = await readVariables(vit.baseWeights());
    const tail = losses.slice(Math.floor(losses.length * 0.9));
    const report: PretrainReport = {
      testAccuracy: (100 * correct) / test.count,
      finalLoss: tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length),
      seconds: (performance.now() - t0) / 1000,
    };
    return { weights, report };
  } finally {
    optimizer.dispose();
    head.dispose();
    vit.dispose();
  }
}
