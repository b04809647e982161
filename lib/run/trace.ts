/**
 * The TRACE experiment: continual instruction tuning of a decoder LM with
 * LoRA on q and v of every layer (spec §8.2, §9).
 *
 * `runTrace(spec)` resolves the task stream (the embedded synthetic tasks, or
 * TRACE/O-LoRA JSON from `--data-dir`), the tokenizer, the pre-trained
 * decoder (pre-trained by the harness on a generic corpus disjoint from the
 * tasks, cached), the methods and their epoch budgets; writes everything into
 * `config.json`; trains every method on the same stream and seeds; after
 * every task generates answers for every task seen so far (greedy by
 * default), scores them with each task's metric, and writes the score row,
 * the predictions (JSONL) and the timings at once.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join, resolve } from "@std/path";
import { type BackendInfo, type BackendName, initBackend } from "../backend.ts";
import type { BlasRequest } from "../native_blas.ts";
import { SYNTHETIC_TASKS, syntheticCorpus, writeSyntheticTrace } from "../data/synthetic_text.ts";
import {
  readTraceStream,
  TASK_ORDERS,
  type TaskOrderName,
  type TraceTaskData,
} from "../data/trace.ts";
import { hashJson } from "../data/synthetic_cache.ts";
import { exists } from "../io.ts";
import { createMethod } from "../methods/registry.ts";
import type { LoraConfig } from "../models/backbone.ts";
import { createDecoder, DECODER_PRESETS, type DecoderConfig } from "../models/decoder.ts";
import { scoreTask, type TraceMetric } from "../metrics/trace_metrics.ts";
import { Rng, type SeedConfig, seedStreams } from "../random.ts";
import { ByteTokenizer } from "../text/byte_tokenizer.ts";
import { loadHfTokenizer } from "../text/hf_tokenizer.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { readHfDecoderCheckpoint } from "../models/hf_decoder.ts";
import type { TensorMap } from "../models/safetensors.ts";
import { formatBytes } from "../models/safetensors_index.ts";
import { type LmTask, type LmTrainConfig, trainLmIncremental } from "../train/lm_incremental.ts";
import { type LmPretrainConfig, pretrainedDecoder } from "../train/lm_pretrain.ts";
import { Progress } from "../train/progress.ts";
import { collectProvenance, dependencyVersions } from "./provenance.ts";
import { RunWriter } from "./run_writer.ts";
import { finishRun, type MethodSpec, resolveMethods, resumePoint, runGrid } from "./experiment.ts";
import type { TrainerCheckpoint } from "../train/checkpoint.ts";

/** Everything a TRACE run depends on. */
export interface TraceSpec {
  /** Experiment name (the results sub-folder). */
  experiment: string;
  /** The task stream. */
  data: {
    /** Directories with `<Task>/{train,eval,test}.json` (first match wins), or null for synthetic tasks. */
    dirs: string[] | null;
    /** Task names in training order (for real data); the synthetic run uses its own eight. */
    tasks: string[];
    /** The named order the tasks came from, when one was used (recorded). */
    order: string | null;
    /** Synthetic generator settings (used when dirs is null). */
    synthetic: { seed: number; train: number; eval: number; test: number };
    /** Cap on training examples per task (null = all). */
    maxTrain: number | null;
    /** Cap on test examples per task (null = all). */
    maxTest: number | null;
    /** Train on eval.json when train.json is missing (MeetingBank in the TRACE-500 copy). */
    missingTrain: "error" | "eval";
  };
  /** The decoder and its tokenizer. */
  model: {
    /** A key of DECODER_PRESETS. */
    preset: string;
    /**
     * A Hugging Face LLaMA-family checkpoint directory (config.json, safetensors, tokenizer.json)
     * to use instead of the pre-trained preset (`--model DIR`); null = the preset.
     */
    dir?: string | null;
    /** `byte` (byte-level, no files) or a path to a Hugging Face tokenizer.json. */
    tokenizer: string;
    /** LoRA on q and v of every layer. */
    lora: LoraConfig;
    /** Pre-training on a generic synthetic corpus. */
    pretrain: LmPretrainConfig & { corpusLines: number };
  };
  /** Methods to compare, in order (the same labels/epochs convention as Split CIFAR). */
  methods: MethodSpec[];
  /** Optimisation and decoding. */
  train: LmTrainConfig;
  /** Run seed (`seed` column). */
  seed: number;
  /** Seeds of the data, init and method streams. */
  seeds: SeedConfig;
  /** Backend request. */
  backend: BackendName;
  /** Native BLAS request (`--blas auto|off|PATH`; absent = "auto"). */
  blas?: BlasRequest;
  /** Output locations. */
  output: { resultsDir: string; cacheDir: string; runId: string | null; overwrite: boolean };
  /** Silence progress output. */
  quiet: boolean;
  /**
   * Several named task orders (`--orders olora-1,olora-2,olora-3`, with --data-dir): the grid runs
   * every method and seed once per order; all orders must have the same number of tasks; tables
   * get an `order` column. Null = `data.order` / `data.tasks` only.
   */
  orderList?: string[] | null;
  /** Several run seeds (`--seeds 0,1,2`): every method once per seed; null = `seed` only. */
  seedList?: number[] | null;
  /** Run only the i-th (1-based) of n shares of the seed × method grid (`--shard i/n`). */
  shard?: { index: number; count: number } | null;
  /** Continue the run in `output.runId` from its checkpoints (`--resume <run-dir>`). */
  resume?: boolean;
}

/** What a finished run returns. */
export interface TraceResult {
  /** The run folder. */
  runDir: string;
  /** Wall-clock seconds. */
  seconds: number;
  /** The backend used. */
  backend: BackendInfo;
}

async function loadTokenizer(spec: TraceSpec): Promise<Tokenizer> {
  if (spec.model.tokenizer === "byte") return new ByteTokenizer();
  return await loadHfTokenizer(spec.model.tokenizer);
}

async function loadTasks(spec: TraceSpec, progress: Progress, taskList: string[]): Promise<{
  tasks: TraceTaskData[];
  description: string;
}> {
  const d = spec.data;
  if (d.dirs === null) {
    const key = await hashJson({ v: 1, ...d.synthetic });
    const dir = join(spec.output.cacheDir, "data", `synthetic-trace-${key}`);
    if (!(await exists(join(dir, "synthetic_trace.json")))) {
      await writeSyntheticTrace(dir, d.synthetic);
    }
    const files = await readTraceStream(dir, {
      tasks: SYNTHETIC_TASKS,
      maxTrain: d.maxTrain ?? undefined,
      maxTest: d.maxTest ?? undefined,
    });
    progress.log(`data: synthetic TRACE-like tasks at ${dir}`);
    return {
      tasks: files,
      description:
        `synthetic stand-in for TRACE (lib/data/synthetic_text.ts, seed ${d.synthetic.seed}; ` +
        `eight tasks mirroring TRACE's task types and metrics, not real TRACE data), read from ${dir}`,
    };
  }
  const files = await readTraceStream(d.dirs, {
    tasks: taskList,
    maxTrain: d.maxTrain ?? undefined,
    maxTest: d.maxTest ?? undefined,
    missingTrain: d.missingTrain,
  });
  for (const f of files) for (const n of f.notes) progress.log(`data: ${f.name}: ${n}`);
  return {
    tasks: files,
    description: `TRACE-format JSON from ${d.dirs.map((x) => resolve(x)).join(", ")}${
      d.order ? ` (order ${d.order})` : ""
    }${
      d.maxTrain || d.maxTest
        ? `, capped at ${d.maxTrain ?? "all"} train / ${d.maxTest ?? "all"} test`
        : ""
    }`,
  };
}

/** Score a task's predictions with its TRACE metric (0–100; empty predictions score 0). */
function score(
  metric: string,
  predictions: string[],
  references: string[],
  prompts: string[],
): number {
  return scoreTask(
    metric as TraceMetric,
    predictions.map((p, i) => ({ prediction: p, reference: references[i], source: prompts[i] })),
  );
}

/**
 * Run the experiment described by `spec`.
 *
 * @example
 * ```ts ignore
 * const { runDir } = await runTrace(spec);
 * ```
 */
export async function runTrace(spec: TraceSpec): Promise<TraceResult> {
  const t0 = performance.now();
  const progress = new Progress({ quiet: spec.quiet });
  const resolvedMethods = resolveMethods(spec.methods, { track: "lm", epochs: spec.train.epochs });
  const backend = await initBackend(spec.backend, { blas: spec.blas });
  progress.log(`backend: ${backend.name} (requested ${backend.requested}; ${backend.note})`);

  const orders: (string | null)[] = spec.orderList ?? [spec.data.order];
  const taskLists = new Map<string | null, LmTask[]>();
  for (const order of orders.slice(1)) {
    const list = [...TASK_ORDERS[order as TaskOrderName]];
    const loaded = (await loadTasks(spec, progress, list)).tasks;
    taskLists.set(
      order,
      loaded.map((t) => ({ name: t.name, train: t.train, test: t.test, metric: t.metric })),
    );
  }
  const firstList = orders[0] !== null && spec.orderList
    ? [...TASK_ORDERS[orders[0] as TaskOrderName]]
    : spec.data.tasks;
  const { tasks: taskData, description } = await loadTasks(spec, progress, firstList);
  const tasks: LmTask[] = taskData.map((t) => ({
    name: t.name,
    train: t.train,
    test: t.test,
    metric: t.metric,
  }));
  taskLists.set(orders[0], tasks);
  for (const [order, list] of taskLists) {
    if (list.length !== tasks.length) {
      throw new Error(
        `--orders: order ${order} has ${list.length} tasks but ${orders[0]} has ${tasks.length}; ` +
          "a run's orders must have the same number of tasks (run the others separately)",
      );
    }
  }
  // The model: a Hugging Face checkpoint (--model DIR) or the harness's pre-trained preset.
  let tokenizer: Tokenizer;
  let decoderConfig: DecoderConfig;
  let weights: TensorMap;
  let modelRecord: Record<string, unknown>;
  if (spec.model.dir) {
    const ckpt = await readHfDecoderCheckpoint(spec.model.dir, {
      lora: spec.model.lora,
      log: (l) => progress.log(l),
    });
    tokenizer = ckpt.tokenizer;
    decoderConfig = ckpt.config;
    weights = ckpt.weights;
    const memory =
      `${ckpt.memory.parameters} parameters, ${formatBytes(ckpt.memory.bytes)} as float32 ` +
      `(limit ${formatBytes(ckpt.memory.limit.bytes)}, ${ckpt.memory.limit.source})`;
    modelRecord = { checkpoint: ckpt.provenance, memory, notes: ckpt.notes };
    progress.log(`model: ${spec.model.dir} (${memory})`);
  } else {
    tokenizer = await loadTokenizer(spec);
    const preset = DECODER_PRESETS[spec.model.preset];
    if (!preset) {
      throw new Error(
        `unknown decoder preset "${spec.model.preset}"; known: ${
          Object.keys(DECODER_PRESETS).join(", ")
        }`,
      );
    }
    if (preset.vocabSize < tokenizer.vocabSize) {
      throw new Error(
        `decoder preset ${spec.model.preset} has a vocabulary of ${preset.vocabSize}, ` +
          `but the tokenizer ${tokenizer.name} needs ${tokenizer.vocabSize}`,
      );
    }
    decoderConfig = { ...preset, lora: spec.model.lora };
    const { corpusLines, ...pretrain } = spec.model.pretrain;
    const pre = await pretrainedDecoder(decoderConfig, {
      corpus: syntheticCorpus({ seed: pretrain.seed, lines: corpusLines }),
      tokenizer,
      pretrain,
      cacheDir: spec.output.cacheDir,
      progress,
    });
    weights = pre.weights;
    modelRecord = {
      pretrain: { ...spec.model.pretrain, cache: pre.path, cached: pre.cached, report: pre.report },
    };
    progress.log(
      `model: ${spec.model.preset} pre-trained on a generic synthetic corpus ` +
        `(${pre.cached ? "cached" : "trained"}: ${pre.path}; held-out loss ${
          pre.report.heldOutLoss?.toFixed(3)
        })`,
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
    track: "lm",
    scenario: "continual instruction tuning (task-agnostic at test time)",
    protocol:
      "tasks in order; loss on answer tokens + EOS (spec §9.3); after each task the single " +
      "adapter generates answers for the test split of every task seen so far, with no task id (except " +
      "dualprompt, which prepends the evaluated task's prompt, as the released code does); each task " +
      "is scored with its own metric (spec §9.5), 0–100",
    data: {
      description,
      numTasks: tasks.length,
      tasks: tasks.map((t) => t.name),
      metrics: tasks.map((t) => t.metric),
      sizes: tasks.map((t) => [t.train.length, t.test.length]),
      order: spec.data.order,
      orders: spec.orderList
        ? Object.fromEntries([...taskLists].map(([o, l]) => [String(o), l.map((t) => t.name)]))
        : null,
      notes: taskData.flatMap((t) => t.notes.map((n) => `${t.name}: ${n}`)),
    },
    model: {
      preset: spec.model.preset,
      decoder: decoderConfig,
      tokenizer: tokenizer.name,
      loraSites: `q and v projections of every layer (${
        2 * decoderConfig.layers
      } sites, layer order = tree depth order)`,
      ...modelRecord,
    },
    decoding: {
      strategy: spec.train.temperature > 0
        ? `sampling, temperature ${spec.train.temperature}`
        : "greedy",
      maxNewTokens: spec.train.maxNewTokens,
      maxPromptLength: spec.train.maxPromptLength,
      generationSeed: spec.train.temperature > 0 ? spec.seeds.method : null,
    },
    methods: resolvedMethods,
    train: spec.train,
    grid: {
      orders,
      seeds: spec.seedList ?? [spec.seed],
      methods: resolvedMethods.map((m) => m.label),
      shard: spec.shard ?? null,
      nesting: "order × seed × method, in that order; shard i/n runs cells k with k mod n = i − 1",
    },
    seed: spec.seedList ?? spec.seed,
    seeds: spec.seedList ? "per run seed s: { data: s, init: s, method: s }" : spec.seeds,
    backend,
    provenance: await collectProvenance(root),
    dependencies: await dependencyVersions(root),
    metrics: "see metrics.csv: each value carries its formula name and text",
    spec: { ...spec, resume: null },
  };
  const writer = spec.resume ? await RunWriter.reopen(runDir) : await RunWriter.create(runDir, {
    config,
    numTasks: tasks.length,
    overwrite: spec.output.overwrite,
  });
  progress.log(`run folder: ${runDir}${spec.resume ? " (resumed)" : ""}`);

  const cells = runGrid(resolvedMethods, {
    orders,
    seedList: spec.seedList,
    seed: spec.seed,
    seeds: spec.seeds,
    shard: spec.shard,
  });
  for (const { m, seed, seeds, order } of cells) {
    const key = { method: m.label, seed, ...(spec.orderList ? { order: String(order) } : {}) };
    const tasks = taskLists.get(order as string | null)!;
    let resume: TrainerCheckpoint | undefined;
    if (spec.resume) {
      const point = await resumePoint(writer, { key, numTasks: tasks.length, progress });
      if (point === null) continue;
      resume = point.checkpoint;
    }
    const streams = seedStreams(seeds);
    const model = createDecoder(decoderConfig, { rng: streams.init, weights });
    model.setBaseTrainable(false);
    const method = createMethod(m.name, {
      options: spec.methods.find((x) => (x.label ?? x.name) === m.label)?.options,
      track: "lm",
    });
    const before = tf.memory().numTensors;
    try {
      await trainLmIncremental(tasks, {
        model,
        method,
        tokenizer,
        score,
        config: { ...spec.train, epochs: m.epochs },
        rngs: {
          data: streams.data,
          method: streams.method,
          generation: new Rng(seeds.method ^ 0x6e6),
        },
        recorder: writer.lmRecorder(key, { taskNames: tasks.map((t) => t.name) }),
        resume,
        progress,
        label: [
          m.label,
          ...(spec.seedList ? [`seed ${seed}`] : []),
          ...(spec.orderList ? [`${order}`] : []),
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
