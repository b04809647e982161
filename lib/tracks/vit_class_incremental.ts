/**
 * The ViT class-incremental track (Split CIFAR-100 and any image set in its
 * layout): a pre-trained, frozen ViT with LoRA adapters, one head over all
 * classes, evaluated without task identity (design.md, "The protocols").
 *
 * The track loads the class-incremental stream (the embedded synthetic
 * stand-in, or CIFAR-100-layout files from `--data-dir`), the backbone (the
 * harness's pre-trained preset, cached, or a Hugging Face checkpoint from
 * `--weights`), and trains one method on one stream with the
 * class-incremental trainer; the runner (`lib/run/runner.ts`) does the rest.
 *
 * @module
 */

import { join, resolve } from "@std/path";
import { readCifar100 } from "../data/cifar100.ts";
import { splitClassIncremental } from "../data/class_split.ts";
import { syntheticDataDir } from "../data/synthetic_cache.ts";
import type { ClassIncrementalStream, ImageSet } from "../data/task.ts";
import type { LoraConfig } from "../models/backbone.ts";
import { createVitClassifier, type VitClassifier } from "../models/vit_classifier.ts";
import { type LoraTarget, loraTargetsOf, VIT_PRESETS, type VitConfig } from "../models/vit.ts";
import { createHfVitClassifier, HF_VIT_PRESETS, readHfVitCheckpoint } from "../models/hf_vit.ts";
import type { TensorMap } from "../models/safetensors.ts";
import { formatBytes } from "../models/safetensors_index.ts";
import { trainClassIncremental, type TrainConfig } from "../train/class_incremental.ts";
import { type PretrainConfig, pretrainedBackbone, type PretrainImages } from "../train/pretrain.ts";
import { linearProbe, type ProbeSet } from "../train/linear_probe.ts";
import {
  checkDisjoint,
  type PretrainSplit,
  selectClasses,
  splitPretrainClasses,
} from "../data/pretrain_split.ts";
import { imageBatch } from "../data/batches.ts";
import { sha256Hex } from "../io.ts";
import { Rng } from "../random.ts";
import * as tf from "@tensorflow/tfjs";
import type { Progress } from "../train/progress.ts";
import { numberInRange, positiveInt, seedValue } from "../run/cli.ts";
import type { FlagSpec, FlagValues } from "../flags.ts";
import { type ExperimentResult, runExperiment } from "../run/runner.ts";
import type { ExperimentSpec, StreamOrder } from "../run/spec.ts";
import type { ExperimentTrack, PreparedTrack } from "../run/track.ts";

/** Everything a Split CIFAR-100 run depends on. */
export interface SplitCifarSpec extends ExperimentSpec {
  /** Data: a CIFAR-layout directory or the embedded synthetic generator. */
  data: {
    /** Directory with train.bin/test.bin (CIFAR-100 layout), or null for synthetic data. */
    dir: string | null;
    /** Synthetic generator settings (used when dir is null). */
    synthetic: { seed: number; trainPerClass: number; testPerClass: number };
    /** Number of tasks. */
    numTasks: number;
    /** Class-order seed; null = natural class order. */
    orderSeed: number | null;
    /**
     * With `dir`: divide its classes into pre-training classes and the stream
     * (lib/data/pretrain_split.ts): the first `classes` of `new Rng(seed).permutation(n)`
     * pre-train the backbone, the others are the stream. Null/absent = the stream is every
     * class and the backbone pre-trains on the synthetic universe.
     */
    pretrainSplit?: { classes: number; seed: number } | null;
  };
  /** Backbone: preset, LoRA placement, pre-training. */
  backbone: {
    /** A key of VIT_PRESETS. */
    preset: string;
    /** LoRA rank, alpha, dropout. */
    lora: LoraConfig;
    /**
     * Blocks that carry LoRA: "all", indices, or `"first:N"` (blocks 0..N−1, HiDe-LoRA's
     * `lora_depth=N`; clipped to the backbone's depth, and the resolved list is recorded).
     */
    loraBlocks: number[] | "all" | `first:${number}`;
    /**
     * Attention projections that carry LoRA in those blocks (absent = q and v; HiDe-LoRA's
     * released ViT: k and v).
     */
    loraTargets?: LoraTarget[];
    /**
     * Pre-training of the backbone: on synthetic data disjoint from the CL classes, or, with
     * `data.pretrainSplit`, on the data set's pre-training classes.
     */
    pretrain: PretrainConfig;
    /**
     * A linear probe of the frozen backbone's features on the stream's classes (lib/train/
     * linear_probe.ts): `trainPerClass` training images per class (the first ones), every test
     * image; null/absent = none.
     */
    probe?: { trainPerClass: number; epochs: number } | null;
    /**
     * A Hugging Face ViT checkpoint directory (config.json + model.safetensors) to use instead
     * of the harness's pre-trained backbone (`--weights DIR`, with `--backbone vit-b16`); null =
     * pre-train the preset.
     */
    weights?: string | null;
  };
  /** Optimisation schedule. */
  train: TrainConfig;
  /** Several class orders (`--orders 0,1,2`; null = natural); null = `data.orderSeed` only. */
  orderList?: (number | null)[] | null;
}

/**
 * The block indices of a `loraBlocks` spec value for a backbone of `depth` blocks.
 *
 * @example
 * ```ts
 * import { resolveLoraBlocks } from "./vit_class_incremental.ts";
 * resolveLoraBlocks("first:5", 12); // [0, 1, 2, 3, 4]
 * resolveLoraBlocks("first:5", 2); // [0, 1]
 * ```
 */
export function resolveLoraBlocks(
  value: SplitCifarSpec["backbone"]["loraBlocks"],
  depth: number,
): number[] {
  if (value === "all") return Array.from({ length: depth }, (_, i) => i);
  if (typeof value === "string") {
    const m = /^first:(\d+)$/.exec(value);
    if (!m || Number(m[1]) < 1) {
      throw new Error(`loraBlocks "${value}": expected "all", "first:N" (N ≥ 1) or indices`);
    }
    return Array.from({ length: Math.min(Number(m[1]), depth) }, (_, i) => i);
  }
  return value;
}

function resolveVitConfig(spec: SplitCifarSpec): VitConfig {
  const preset = VIT_PRESETS[spec.backbone.preset];
  if (!preset) {
    throw new Error(
      `unknown ViT preset "${spec.backbone.preset}"; known: ${Object.keys(VIT_PRESETS).join(", ")}`,
    );
  }
  const blocks = resolveLoraBlocks(spec.backbone.loraBlocks, preset.depth);
  for (const b of blocks) {
    if (!Number.isInteger(b) || b < 0 || b >= preset.depth) {
      throw new Error(
        `LoRA block ${b} does not exist: preset ${spec.backbone.preset} has ${preset.depth} blocks`,
      );
    }
  }
  return {
    ...preset,
    lora: spec.backbone.lora,
    loraBlocks: blocks,
    ...(spec.backbone.loraTargets ? { loraTargets: [...spec.backbone.loraTargets] } : {}),
  };
}

async function loadStream(
  spec: SplitCifarSpec,
  progress: Progress,
  orderSeed: number | null,
): Promise<{
  stream: ClassIncrementalStream;
  dataInfo: Record<string, unknown>;
  pretrainImages: PretrainImages | null;
}> {
  let dir = spec.data.dir;
  let dataInfo: Record<string, unknown>;
  if (dir === null) {
    const t0 = performance.now();
    const gen = await syntheticDataDir(join(spec.output.cacheDir, "data"), {
      seed: spec.data.synthetic.seed,
      trainPerClass: spec.data.synthetic.trainPerClass,
      testPerClass: spec.data.synthetic.testPerClass,
      universe: "cl",
    });
    dir = gen.dir;
    progress.log(
      `data: synthetic (${gen.cached ? "cached" : "generated"} in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s) at ${dir}`,
    );
    dataInfo = { source: "synthetic", dir, generator: gen.description, standIn: true };
  } else {
    dataInfo = { source: "directory", dir: resolve(dir), standIn: null };
  }
  const train = await readCifar100(dir, { split: "train" });
  const test = await readCifar100(dir, { split: "test" });
  let split: PretrainSplit | null = null;
  let pretrainImages: PretrainImages | null = null;
  if (spec.data.pretrainSplit) {
    if (spec.data.dir === null) {
      throw new Error("a pre-training split divides a real data set's classes: give --data-dir");
    }
    const classes = [...new Set(train.fine)].sort((a, b) => a - b);
    if (classes.length !== classes[classes.length - 1] + 1) {
      throw new Error(
        `${dir}: the pre-training split needs classes 0…n−1, found ${classes.length} labels up to ${
          classes[classes.length - 1]
        }`,
      );
    }
    try {
      split = splitPretrainClasses(classes.length, {
        pretrainClasses: spec.data.pretrainSplit.classes,
        seed: spec.data.pretrainSplit.seed,
      });
    } catch (err) {
      throw new Error(
        `--pretrain-classes ${spec.data.pretrainSplit.classes}: ${dir} has ${classes.length} ` +
          `classes; expected 1…${classes.length - 1} (the rest are the stream): ${
            (err as Error).message
          }`,
      );
    }
    checkDisjoint(split.pretrainClasses, split.streamClasses);
    // With --weights nothing is pre-trained here: the split only leaves the classes out of the
    // stream, so their images are neither selected nor hashed.
    if (!spec.backbone.weights) pretrainImages = await pretrainImagesOf(train, test, split, dir);
  }
  const stream = splitClassIncremental(train, test, {
    numTasks: spec.data.numTasks,
    orderSeed,
    ...(split ? { classes: split.streamClasses } : {}),
  });
  dataInfo = {
    ...dataInfo,
    trainImages: train.count,
    testImages: test.count,
    numTasks: stream.tasks.length,
    classesPerTask: stream.tasks[0].classes.length,
    orderSeed: stream.orderSeed,
    classOrder: stream.classOrder,
    taskClasses: stream.tasks.map((t) => t.classes),
    classNames: train.fineNames ?? null,
    ...(split
      ? {
        pretrainSplit: {
          seed: split.seed,
          pretrainClasses: split.pretrainClasses,
          streamClasses: split.streamClasses,
          disjoint: "checked: no class is both a pre-training and a stream class",
          ...(spec.backbone.weights
            ? {
              pretrainedOn: "not trained on: the backbone is the --weights checkpoint; the " +
                "pre-training classes are only left out of the stream",
            }
            : {}),
        },
      }
      : {}),
  };
  return { stream, dataInfo, pretrainImages };
}

/** The pre-training classes' images of a split, with the identity that keys the backbone cache. */
async function pretrainImagesOf(
  train: ImageSet,
  test: ImageSet,
  split: PretrainSplit,
  dir: string,
): Promise<PretrainImages> {
  const preTrain = selectClasses(train, split.pretrainClasses);
  const preTest = selectClasses(test, split.pretrainClasses);
  return {
    train: preTrain,
    test: preTest,
    identity: {
      classes: split.pretrainClasses,
      trainSha256: await sha256Hex(preTrain.pixels),
      testSha256: await sha256Hex(preTest.pixels),
    },
    description: `${split.pretrainClasses.length} classes of ${resolve(dir)} ` +
      `(split seed ${split.seed}; ${preTrain.count} train / ${preTest.count} held-out images)`,
  };
}

/** The flags of the ViT track (the common ones are in lib/run/cli.ts). */
export const VIT_FLAGS: Record<string, FlagSpec> = {
  tasks: { type: "number", help: "number of tasks (classes split evenly) (integer 1–10000)" },
  "order-seed": { type: "string", help: "class-order seed, or 'natural' for the natural order" },
  "data-dir": {
    type: "string",
    help: "read CIFAR-100-layout train.bin/test.bin from DIR instead of synthetic data",
  },
  "train-per-class": {
    type: "number",
    help: "synthetic data: training images per class (integer 1–10⁷; not with --data-dir)",
  },
  "test-per-class": {
    type: "number",
    help: "synthetic data: test images per class (integer 1–10⁷; not with --data-dir)",
  },
  preset: {
    type: "string",
    help: "ViT preset (micro, tiny, tiny-p8, small; vit-b16 with --weights)",
  },
  backbone: {
    type: "string",
    help: "the same as --preset (e.g. --backbone vit-b16 --weights DIR)",
  },
  weights: {
    type: "string",
    help:
      "a Hugging Face ViT checkpoint directory (config.json + model.safetensors) instead of pre-training",
  },
  "lora-rank": { type: "number", help: "LoRA rank r (integer 1–10⁷)" },
  "lora-alpha": { type: "number", help: "LoRA alpha (scale alpha/r) (0 < alpha ≤ 10⁴)" },
  "lora-dropout": { type: "number", help: "dropout on the LoRA input (0 ≤ p < 1)" },
  "lora-blocks": {
    type: "string",
    help:
      "blocks with LoRA: 'all', 'first:N' (blocks 0..N-1, clipped to the depth) or indices like 0,2,4",
  },
  "lora-targets": {
    type: "string",
    help: "attention projections with LoRA in those blocks: a subset of q,k,v (HiDe-LoRA: k,v)",
  },
  "pretrain-steps": {
    type: "number",
    help: "backbone pre-training steps (cached by config hash) (integer 1–10⁶)",
  },
  "pretrain-classes": {
    type: "number",
    help:
      "with --data-dir: pre-train the backbone on N of its classes (a seeded draw) and stream the others (integer ≥ 1)",
  },
  "pretrain-split-seed": {
    type: "number",
    help: "with --pretrain-classes: the seed of the class draw (default 0)",
  },
  "pretrain-augment": {
    type: "string",
    help: "augment pre-training batches: crop-flip (pad 4, random crop, flip) or none",
  },
  "probe-per-class": {
    type: "number",
    help:
      "linear probe of the frozen backbone on the stream's classes with N training images each (0 = off)",
  },
  "curve-every": {
    type: "number",
    help: "learning curve (Fig. 1): probe the current task every K steps (0 = off)",
  },
  "curve-images": { type: "number", help: "learning-curve subset: first N test images of a task" },
};

function applyVitFlags(spec: SplitCifarSpec, f: FlagValues): void {
  const num = (k: string) => f[k] as number | undefined;
  if (num("tasks") !== undefined) {
    spec.data.numTasks = positiveInt("tasks", num("tasks")!, { max: 10_000 });
  }
  if (f["order-seed"] !== undefined) {
    const v = f["order-seed"] as string;
    if (v === "natural") spec.data.orderSeed = null;
    else {
      const n = Number(v);
      if (v.trim() === "" || !Number.isInteger(n)) {
        throw new Error(`--order-seed must be an integer or 'natural', got ${v}`);
      }
      spec.data.orderSeed = seedValue("order-seed", n);
    }
  }
  if (f["data-dir"] !== undefined) {
    for (const k of ["train-per-class", "test-per-class"]) {
      if (f[k] !== undefined) {
        throw new Error(
          `--${k} sizes the synthetic data set; with --data-dir the files decide the sizes: drop one`,
        );
      }
    }
    spec.data.dir = f["data-dir"] as string;
  }
  if (num("train-per-class") !== undefined) {
    spec.data.synthetic.trainPerClass = positiveInt("train-per-class", num("train-per-class")!);
  }
  if (num("test-per-class") !== undefined) {
    spec.data.synthetic.testPerClass = positiveInt("test-per-class", num("test-per-class")!);
  }
  if (f.preset !== undefined && f.backbone !== undefined) {
    throw new Error("--preset and --backbone name the same thing; give one");
  }
  if (f.preset !== undefined || f.backbone !== undefined) {
    spec.backbone.preset = (f.preset ?? f.backbone) as string;
  }
  if (f.weights !== undefined) spec.backbone.weights = f.weights as string;
  if (num("lora-rank") !== undefined) {
    spec.backbone.lora.rank = positiveInt("lora-rank", num("lora-rank")!);
  }
  if (num("lora-alpha") !== undefined) {
    spec.backbone.lora.alpha = numberInRange("lora-alpha", num("lora-alpha")!, {
      above: 0,
      max: 1e4,
    });
  }
  if (num("lora-dropout") !== undefined) {
    spec.backbone.lora.dropout = numberInRange("lora-dropout", num("lora-dropout")!, {
      min: 0,
      max: 1,
      below: true,
    });
  }
  if (f["lora-blocks"] !== undefined) {
    const v = f["lora-blocks"] as string;
    spec.backbone.loraBlocks = v === "all"
      ? "all"
      : /^first:\d+$/.test(v)
      ? v as `first:${number}`
      : v.split(",").map((x) => {
        const n = Number(x);
        if (!Number.isInteger(n) || n < 0) {
          throw new Error(`--lora-blocks: "${x}" is not a block index`);
        }
        return n;
      });
  }
  if (f["lora-targets"] !== undefined) {
    const list = (f["lora-targets"] as string).split(",").map((x) => x.trim());
    for (const t of list) {
      if (t !== "q" && t !== "k" && t !== "v") {
        throw new Error(`--lora-targets: "${t}" is not one of q, k, v`);
      }
    }
    if (new Set(list).size !== list.length) {
      throw new Error(`--lora-targets: "${f["lora-targets"]}" names a projection twice`);
    }
    spec.backbone.loraTargets = list as LoraTarget[];
  }
  if (num("pretrain-steps") !== undefined) {
    spec.backbone.pretrain.steps = positiveInt("pretrain-steps", num("pretrain-steps")!, {
      max: 1_000_000,
    });
  }
  if (num("pretrain-classes") !== undefined) {
    if (f["data-dir"] === undefined && spec.data.dir === null) {
      throw new Error("--pretrain-classes divides a real data set's classes: give --data-dir");
    }
    spec.data.pretrainSplit = {
      classes: positiveInt("pretrain-classes", num("pretrain-classes")!),
      seed: spec.data.pretrainSplit?.seed ?? 0,
    };
  }
  if (num("pretrain-split-seed") !== undefined) {
    if (!spec.data.pretrainSplit) {
      throw new Error(
        "--pretrain-split-seed applies to a pre-training split: give --pretrain-classes too",
      );
    }
    spec.data.pretrainSplit.seed = seedValue("pretrain-split-seed", num("pretrain-split-seed")!);
  }
  for (const name of ["pretrain-steps", "pretrain-augment"]) {
    if (f[name] !== undefined && (f.weights !== undefined || spec.backbone.weights)) {
      throw new Error(
        `--${name} applies to the harness's own pre-training; --weights uses a checkpoint instead`,
      );
    }
  }
  if (f["pretrain-augment"] !== undefined) {
    const v = f["pretrain-augment"] as string;
    if (v !== "crop-flip" && v !== "none") {
      throw new Error(`--pretrain-augment must be crop-flip or none, got ${v}`);
    }
    // "none" removes the field, so the backbone's cache key is that of a spec without it.
    if (v === "crop-flip") spec.backbone.pretrain.augment = { padding: 4, flip: true };
    else delete spec.backbone.pretrain.augment;
  }
  if (num("probe-per-class") !== undefined) {
    const n = num("probe-per-class")!;
    spec.backbone.probe = n === 0 ? null : {
      trainPerClass: positiveInt("probe-per-class", n),
      epochs: spec.backbone.probe?.epochs ?? 300,
    };
  }
  if (num("curve-every") !== undefined) {
    const k = num("curve-every")!;
    spec.train.curveEvery = k === 0 ? 0 : positiveInt("curve-every", k);
  }
  if (num("curve-images") !== undefined) {
    spec.train.curveImages = positiveInt("curve-images", num("curve-images")!);
  }
}

/** The linear probe's record in config.json. */
interface ProbeRecord {
  protocol: string;
  classes: number;
  trainImages: number;
  testImages: number;
  testAccuracy: number;
  trainAccuracy: number;
}

/**
 * Features of the frozen backbone (LoRA B = 0 at init, so the base model) for the stream's
 * classes, a linear probe on them (lib/train/linear_probe.ts); the model is disposed.
 */
async function probeStream(
  stream: ClassIncrementalStream,
  options: {
    model: VitClassifier;
    train: { mean?: readonly [number, number, number]; std?: readonly [number, number, number] };
    trainPerClass: number;
    epochs: number;
  },
): Promise<ProbeRecord> {
  const { model } = options;
  try {
    const perClass = new Map<number, number>();
    const trainIdx: number[] = [];
    for (let i = 0; i < stream.train.count; i++) {
      const c = stream.labelToOutput[stream.train.fine[i]];
      if (c < 0) continue;
      const n = perClass.get(c) ?? 0;
      if (n < options.trainPerClass) {
        trainIdx.push(i);
        perClass.set(c, n + 1);
      }
    }
    const testIdx: number[] = [];
    for (let i = 0; i < stream.test.count; i++) {
      if (stream.labelToOutput[stream.test.fine[i]] >= 0) testIdx.push(i);
    }
    const features = async (set: ImageSet, idx: number[]): Promise<ProbeSet> => {
      let dim = 0;
      const rows: Float32Array[] = [];
      const labels = new Int32Array(idx.length);
      for (let b = 0; b < idx.length; b += 128) {
        const chunk = idx.slice(b, b + 128);
        const batch = imageBatch(set, chunk, {
          labelToOutput: stream.labelToOutput,
          ...(options.train.mean ? { mean: options.train.mean } : {}),
          ...(options.train.std ? { std: options.train.std } : {}),
        });
        const f = tf.tidy(() =>
          model.vit.features(tf.tensor4d(batch.x, batch.shape), { training: false })
        );
        dim = f.shape[1];
        rows.push((await f.data()) as Float32Array);
        f.dispose();
        labels.set(batch.y, b);
      }
      const all = new Float32Array(idx.length * dim);
      let o = 0;
      for (const r of rows) {
        all.set(r, o);
        o += r.length;
      }
      return { features: all, labels, dim };
    };
    const train = await features(stream.train, trainIdx);
    const test = await features(stream.test, testIdx);
    const classes = stream.classOrder.length;
    const r = await linearProbe(train, test, { numClasses: classes, epochs: options.epochs });
    return {
      protocol: "softmax regression on standardised frozen features (mean-pooled/CLS as the " +
        `classifier uses them), full-batch Adam lr 0.01, ${options.epochs} epochs, L2 1e-4; ` +
        `the first ${options.trainPerClass} training images of each stream class, every test image`,
      classes,
      trainImages: trainIdx.length,
      testImages: testIdx.length,
      testAccuracy: r.testAccuracy,
      trainAccuracy: r.trainAccuracy,
    };
  } finally {
    model.dispose();
  }
}

async function prepareVit(
  spec: SplitCifarSpec,
  context: { progress: Progress; orders: StreamOrder[] },
): Promise<PreparedTrack<ClassIncrementalStream>> {
  const { progress, orders } = context;
  const streams = new Map<StreamOrder, ClassIncrementalStream>();
  const { stream, dataInfo, pretrainImages } = await loadStream(
    spec,
    progress,
    orders[0] as number | null,
  );
  streams.set(orders[0], stream);
  // The backbone: a Hugging Face checkpoint (--weights) or the harness's pre-trained preset.
  let vitConfig: VitConfig;
  let baseWeights: TensorMap;
  let backboneRecord: Record<string, unknown>;
  let train = spec.train;
  let makeModel = (rng: Rng) => createVitClassifier(vitConfig, { numOutputs, baseWeights, rng });
  const numOutputs = stream.classOrder.length;
  if (spec.backbone.weights) {
    const hf = await readHfVitCheckpoint(spec.backbone.weights, {
      preset: spec.backbone.preset in HF_VIT_PRESETS ? spec.backbone.preset : undefined,
      lora: spec.backbone.lora,
      loraBlocks: Array.isArray(spec.backbone.loraBlocks) ? spec.backbone.loraBlocks : undefined,
      log: (l) => progress.log(l),
    });
    if (spec.backbone.loraTargets) hf.config.loraTargets = [...spec.backbone.loraTargets];
    if (typeof spec.backbone.loraBlocks === "string") {
      hf.config.loraBlocks = resolveLoraBlocks(spec.backbone.loraBlocks, hf.config.depth);
    }
    vitConfig = hf.config;
    baseWeights = hf.weights;
    train = { ...spec.train, mean: hf.preprocessing.mean, std: hf.preprocessing.std };
    makeModel = (rng) => createHfVitClassifier(hf, { numOutputs, rng });
    const memory =
      `${hf.memory.parameters} parameters, ${formatBytes(hf.memory.bytes)} as float32 ` +
      `(limit ${formatBytes(hf.memory.limit.bytes)}, ${hf.memory.limit.source})`;
    backboneRecord = { checkpoint: hf.provenance, memory };
    progress.log(`backbone: ${spec.backbone.weights} (${memory})`);
  } else {
    if (spec.backbone.preset in HF_VIT_PRESETS) {
      throw new Error(`backbone ${spec.backbone.preset} needs real weights: pass --weights DIR`);
    }
    vitConfig = resolveVitConfig(spec);
    const pre = await pretrainedBackbone(vitConfig, {
      pretrain: spec.backbone.pretrain,
      cacheDir: spec.output.cacheDir,
      progress,
      ...(pretrainImages ? { images: pretrainImages } : {}),
    });
    baseWeights = pre.weights;
    const source = pretrainImages
      ? `real images: ${pretrainImages.description}`
      : 'synthetic "pretrain" classes (lib/data/synthetic_images.ts), disjoint from the stream';
    backboneRecord = {
      pretrain: {
        ...spec.backbone.pretrain,
        data: source,
        cache: pre.path,
        cached: pre.cached,
        report: pre.report,
      },
    };
    progress.log(
      `backbone: ${spec.backbone.preset} pre-trained on ${source} ` +
        `(${pre.cached ? "cached" : "trained"}: ${pre.path}; held-out accuracy on its own ` +
        `classes ${pre.report.testAccuracy.toFixed(2)}%)`,
    );
  }
  if (spec.backbone.probe) {
    const probe = await probeStream(stream, {
      model: makeModel(new Rng(0)),
      train: { mean: train.mean, std: train.std },
      ...spec.backbone.probe,
    });
    backboneRecord = { ...backboneRecord, linearProbe: probe };
    progress.log(
      `linear probe of the frozen features on the stream's ${probe.classes} classes: ` +
        `${probe.testAccuracy.toFixed(2)}% test accuracy (${probe.trainImages} train / ` +
        `${probe.testImages} test images; chance ${(100 / probe.classes).toFixed(2)}%)`,
    );
  }

  return {
    numTasks: stream.tasks.length,
    describe: {
      scenario: "class-incremental",
      protocol:
        "one head over all classes; training logits restricted to the current task's classes; " +
        "test: argmax over all classes seen so far, no task id (acc_cil); acc_til restricts the argmax to " +
        "the evaluated task's classes and is reported for reference only",
      data: dataInfo,
      backbone: {
        preset: spec.backbone.preset,
        vit: vitConfig,
        loraSites: `${loraTargetsOf(vitConfig).join(" and ")} projections of blocks ${
          vitConfig.loraBlocks.join(",")
        } (block by block, in this order: the TreeLoRA site order)`,
        ...backboneRecord,
        frozen:
          "all base weights frozen during CL; trainable: the method's variables (LoRA A/B and the head)",
      },
    },
    train,
    async stream(order) {
      if (!streams.has(order)) {
        streams.set(order, (await loadStream(spec, progress, order as number | null)).stream);
      }
      return streams.get(order)!;
    },
    async runCell(cell) {
      const model = makeModel(cell.rngs.init);
      try {
        await trainClassIncremental(cell.stream, {
          model,
          method: cell.method,
          config: { ...train, epochs: cell.epochs },
          rngs: { data: cell.rngs.data, method: cell.rngs.method },
          recorder: cell.writer.recorder(cell.key),
          resume: cell.resume,
          progress: cell.progress,
          label: cell.label,
        });
      } finally {
        model.dispose();
      }
    },
  };
}

/** The ViT class-incremental track (`deno task exp:split-cifar`). */
export const VIT_TRACK: ExperimentTrack<SplitCifarSpec, ClassIncrementalStream> = {
  name: "vit",
  usage: "deno task exp:split-cifar [flags]",
  flags: VIT_FLAGS,
  applyFlags: applyVitFlags,
  parseOrder(token) {
    if (token === "natural") return null;
    const n = Number(token);
    if (!Number.isInteger(n)) {
      throw new Error(`--orders: "${token}" is neither an integer seed nor 'natural'`);
    }
    return n;
  },
  setOrders(spec, orders, flags) {
    if (flags["order-seed"] !== undefined) {
      throw new Error("--orders and --order-seed cannot be combined");
    }
    spec.orderList = orders as (number | null)[];
  },
  plannedTasks: (spec) => spec.data.numTasks,
  defaultOrder: (spec) => spec.data.orderSeed,
  prepare: prepareVit,
};

/**
 * Run a Split CIFAR-100 experiment: {@link runExperiment} on {@link VIT_TRACK}.
 *
 * @example
 * ```ts ignore
 * import { SPEC } from "../../experiments/split_cifar.ts";
 * const { runDir } = await runSplitCifar(SPEC);
 * ```
 */
export function runSplitCifar(spec: SplitCifarSpec): Promise<ExperimentResult> {
  return runExperiment(spec, VIT_TRACK);
}
