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
import type { ClassIncrementalStream } from "../data/task.ts";
import type { LoraConfig } from "../models/backbone.ts";
import { createVitClassifier } from "../models/vit_classifier.ts";
import { type LoraTarget, loraTargetsOf, VIT_PRESETS, type VitConfig } from "../models/vit.ts";
import { createHfVitClassifier, HF_VIT_PRESETS, readHfVitCheckpoint } from "../models/hf_vit.ts";
import type { TensorMap } from "../models/safetensors.ts";
import { formatBytes } from "../models/safetensors_index.ts";
import type { Rng } from "../random.ts";
import { trainClassIncremental, type TrainConfig } from "../train/class_incremental.ts";
import { type PretrainConfig, pretrainedBackbone } from "../train/pretrain.ts";
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
    /** Pre-training of the backbone on synthetic data disjoint from the CL classes. */
    pretrain: PretrainConfig;
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
  const stream = splitClassIncremental(train, test, {
    numTasks: spec.data.numTasks,
    orderSeed,
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
  };
  return { stream, dataInfo };
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
  if (num("curve-every") !== undefined) {
    const k = num("curve-every")!;
    spec.train.curveEvery = k === 0 ? 0 : positiveInt("curve-every", k);
  }
  if (num("curve-images") !== undefined) {
    spec.train.curveImages = positiveInt("curve-images", num("curve-images")!);
  }
}

async function prepareVit(
  spec: SplitCifarSpec,
  context: { progress: Progress; orders: StreamOrder[] },
): Promise<PreparedTrack<ClassIncrementalStream>> {
  const { progress, orders } = context;
  const streams = new Map<StreamOrder, ClassIncrementalStream>();
  const { stream, dataInfo } = await loadStream(spec, progress, orders[0] as number | null);
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
    });
    baseWeights = pre.weights;
    backboneRecord = {
      pretrain: {
        ...spec.backbone.pretrain,
        cache: pre.path,
        cached: pre.cached,
        report: pre.report,
      },
    };
    progress.log(
      `backbone: ${spec.backbone.preset} pre-trained on synthetic "pretrain" classes ` +
        `(${pre.cached ? "cached" : "trained"}: ${pre.path}; held-out accuracy ${
          pre.report.testAccuracy.toFixed(2)
        }%)`,
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
