/**
 * The Split CIFAR-100 experiment: class-incremental learning with a
 * pre-trained, frozen ViT and LoRA adapters (design.md, "The protocols").
 *
 * `runSplitCifar(spec)` resolves everything a run depends on — data, class
 * order, backbone, methods, schedule, seeds, backend — writes it into
 * `config.json`, trains every method on the same stream with the same seeds,
 * appends each task's results to disk as it finishes, and renders the run's
 * tables and plots.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join, resolve } from "@std/path";
import { type BackendInfo, initBackend } from "../backend.ts";
import { readCifar100 } from "../data/cifar100.ts";
import { splitClassIncremental } from "../data/class_split.ts";
import { syntheticDataDir } from "../data/synthetic_cache.ts";
import type { ClassIncrementalStream } from "../data/task.ts";
import { createMethod } from "../methods/registry.ts";
import { finishRun, type MethodSpec, resolveMethods, resumePoint, runGrid } from "./experiment.ts";
import type { LoraConfig } from "../models/backbone.ts";
import { createVitClassifier } from "../models/vit_classifier.ts";
import { type LoraTarget, loraTargetsOf, VIT_PRESETS, type VitConfig } from "../models/vit.ts";
import { createHfVitClassifier, HF_VIT_PRESETS, readHfVitCheckpoint } from "../models/hf_vit.ts";
import type { TensorMap } from "../models/safetensors.ts";
import { formatBytes } from "../models/safetensors_index.ts";
import { type Rng, type SeedConfig, seedStreams } from "../random.ts";
import { trainClassIncremental, type TrainConfig } from "../train/class_incremental.ts";
import { type PretrainConfig, pretrainedBackbone } from "../train/pretrain.ts";
import { Progress } from "../train/progress.ts";
import type { TrainerCheckpoint } from "../train/checkpoint.ts";
export type { MethodSpec } from "./experiment.ts";
import { collectProvenance, dependencyVersions } from "./provenance.ts";
import { RunWriter } from "./run_writer.ts";
import type { BackendName } from "../backend.ts";
import type { BlasRequest } from "../native_blas.ts";

/** Everything a Split CIFAR-100 run depends on. */
export interface SplitCifarSpec {
  /** Experiment name (the results sub-folder). */
  experiment: string;
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
  /** Methods to compare, in order. */
  methods: MethodSpec[];
  /** Optimisation schedule. */
  train: TrainConfig;
  /** The run seed: the `seed` column of every table. */
  seed: number;
  /** Seeds of the data (shuffles), init (LoRA, head) and method (dropout, bandit) streams. */
  seeds: SeedConfig;
  /**
   * Several run seeds (`--seeds 0,1,2`): every method runs once per seed, with the data, init
   * and method streams all seeded by it; tables report mean ± std over them. Null = `seed` only.
   */
  seedList?: number[] | null;
  /**
   * Several class orders (`--orders 0,1,2`; null = natural): the grid runs every method and
   * seed once per order; tables get an `order` column. Null = `data.orderSeed` only.
   */
  orderList?: (number | null)[] | null;
  /** Run only the i-th (1-based) of n shares of the order × seed × method grid (`--shard i/n`). */
  shard?: { index: number; count: number } | null;
  /** Backend request. */
  backend: BackendName;
  /** Native BLAS request (`--blas auto|off|PATH`; absent = "auto"). */
  blas?: BlasRequest;
  /** Output locations. */
  output: {
    /** Root of the results tree. */
    resultsDir: string;
    /** Cache for generated data and pre-trained backbones. */
    cacheDir: string;
    /** Run folder name; null = timestamp. */
    runId: string | null;
    /** Allow replacing a run folder that already holds results. */
    overwrite: boolean;
  };
  /** Silence progress output. */
  quiet: boolean;
  /**
   * Continue the run in `output.runId` (set by `--resume <run-dir>` from that folder's
   * config.json): finished methods are skipped, the others continue after their last
   * checkpointed task.
   */
  resume?: boolean;
}

/** What a finished run returns. */
export interface SplitCifarResult {
  /** The run folder. */
  runDir: string;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
  /** The backend used. */
  backend: BackendInfo;
}

/**
 * The block indices of a `loraBlocks` spec value for a backbone of `depth` blocks.
 *
 * @example
 * ```ts
 * import { resolveLoraBlocks } from "./split_cifar.ts";
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

/**
 * Run the experiment described by `spec`.
 *
 * @example
 * ```ts ignore
 * const result = await runSplitCifar(spec);
 * console.log(result.runDir);
 * ```
 */
export async function runSplitCifar(spec: SplitCifarSpec): Promise<SplitCifarResult> {
  const t0 = performance.now();
  const progress = new Progress({ quiet: spec.quiet });
  const resolvedMethods = resolveMethods(spec.methods, { track: "vit", epochs: spec.train.epochs });
  const backend = await initBackend(spec.backend, { blas: spec.blas });
  progress.log(`backend: ${backend.name} (requested ${backend.requested}; ${backend.note})`);

  const orders = spec.orderList ?? [spec.data.orderSeed];
  const streams = new Map<number | null, ClassIncrementalStream>();
  const { stream, dataInfo } = await loadStream(spec, progress, orders[0]);
  streams.set(orders[0], stream);
  const streamFor = async (order: number | null) => {
    if (!streams.has(order)) streams.set(order, (await loadStream(spec, progress, order)).stream);
    return streams.get(order)!;
  };
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

  const root = resolve(".");
  const runId = spec.output.runId ?? new Date().toISOString().replace(/[:.]/g, "-");
  const shardFolder = spec.shard ? `shard-${spec.shard.index}-of-${spec.shard.count}` : null;
  const runDir = join(
    spec.output.resultsDir,
    spec.experiment,
    runId,
    ...(shardFolder ? [shardFolder] : []),
  );
  const config = {
    experiment: spec.experiment,
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
    methods: resolvedMethods,
    train,
    grid: {
      orders: orders,
      seeds: spec.seedList ?? [spec.seed],
      methods: resolvedMethods.map((m) => m.label),
      shard: spec.shard ?? null,
      nesting: "order × seed × method, in that order; shard i/n runs cells k with k mod n = i − 1",
    },
    seed: spec.seedList ?? spec.seed,
    seeds: spec.seedList
      ? "per run seed s: { data: s, init: s, method: s }; the `seed` column of the tables is s"
      : spec.seeds,
    backend,
    provenance: await collectProvenance(root),
    dependencies: await dependencyVersions(root),
    metrics: "see metrics.csv: each value carries its formula name and text",
    spec: { ...spec, resume: null },
  };
  const writer = spec.resume ? await RunWriter.reopen(runDir) : await RunWriter.create(runDir, {
    config,
    numTasks: stream.tasks.length,
    overwrite: spec.output.overwrite,
  });
  progress.log(`run folder: ${runDir}${spec.resume ? " (resumed)" : ""}`);

  const runs = runGrid(resolvedMethods, {
    orders,
    seedList: spec.seedList,
    seed: spec.seed,
    seeds: spec.seeds,
    shard: spec.shard,
  });
  for (const { m, seed, seeds, order } of runs) {
    const key = { method: m.label, seed, ...(spec.orderList ? { order: order ?? "natural" } : {}) };
    const stream = await streamFor(order as number | null);
    let resume: TrainerCheckpoint | undefined;
    if (spec.resume) {
      const point = await resumePoint(writer, { key, numTasks: stream.tasks.length, progress });
      if (point === null) continue;
      resume = point.checkpoint;
    }
    const rngs = seedStreams(seeds);
    const model = makeModel(rngs.init);
    const method = createMethod(m.name, {
      options: spec.methods.find((x) => (x.label ?? x.name) === m.label)?.options,
      track: "vit",
    });
    const before = tf.memory().numTensors;
    try {
      await trainClassIncremental(stream, {
        model,
        method,
        config: { ...train, epochs: m.epochs },
        rngs: { data: rngs.data, method: rngs.method },
        recorder: writer.recorder(key),
        resume,
        progress,
        label: [
          m.label,
          ...(spec.seedList ? [`seed ${seed}`] : []),
          ...(spec.orderList ? [`order ${order}`] : []),
        ]
          .join(" "),
      });
    } finally {
      method.dispose();
      model.dispose();
    }
    const leaked = tf.memory().numTensors - before;
    if (leaked > 0) progress.log(`warning: ${leaked} tensors left after ${m.label}`);
  }
  const seconds = await finishRun(writer, { progress, startedAt: t0 });
  return { runDir, seconds, backend };
}
