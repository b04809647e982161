/**
 * The one experiment runner: `runExperiment(spec, track)` resolves the
 * methods, initialises the backend, lets the track load its data and model,
 * writes `config.json`, runs the order × seed × method grid (or one shard of
 * it, or the unfinished rest of it on `--resume`), appends each task's results
 * to disk as it finishes, and renders the run's report.
 *
 * What differs between tracks (data, model, trainer, evaluation) comes from
 * an {@link ExperimentTrack} (`track.ts`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { basename, dirname, join, resolve } from "@std/path";
import { type BackendInfo, type BlasRequest, initBackend } from "./backend.ts";
import { readJson, safeSegment, withWriteRoots } from "../io.ts";
import { type SeedConfig, seedStreams } from "../random.ts";
import { createMethod } from "../methods/registry.ts";
import { writeRunReport } from "../report/run_report.ts";
import { loadCheckpoint, type TrainerCheckpoint } from "../train/checkpoint.ts";
import { Progress } from "../train/progress.ts";
import { collectProvenance, dependencyVersions } from "./provenance.ts";
import { type RunKey, RunWriter } from "./run_writer.ts";
import { type ExperimentSpec, resolveMethods, type StreamOrder } from "./spec.ts";
import type { ExperimentTrack } from "./track.ts";

/** What a finished run returns. */
export interface ExperimentResult {
  /** The run folder. */
  runDir: string;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
  /** The backend used. */
  backend: BackendInfo;
}

/**
 * Run the experiment `spec` on `track`.
 *
 * @example
 * ```ts ignore
 * import { VIT_TRACK } from "../tracks/vit_class_incremental.ts";
 * import { SPEC } from "../../experiments/split_cifar.ts";
 * const { runDir } = await runExperiment(SPEC, VIT_TRACK);
 * ```
 */
export async function runExperiment<S extends ExperimentSpec, Stream>(
  spec: S,
  track: ExperimentTrack<S, Stream>,
): Promise<ExperimentResult> {
  safeSegment(spec.experiment, "the experiment name");
  if (spec.output.runId !== null) safeSegment(spec.output.runId, "--out");
  // Every file the run writes (results, cached data and backbones) stays under these two roots
  // and is never written through a symbolic link (lib/io.ts).
  return await withWriteRoots(
    [spec.output.resultsDir, spec.output.cacheDir],
    () => runInRoots(spec, track),
  );
}

async function runInRoots<S extends ExperimentSpec, Stream>(
  spec: S,
  track: ExperimentTrack<S, Stream>,
): Promise<ExperimentResult> {
  const t0 = performance.now();
  const progress = new Progress({ quiet: spec.quiet });
  const methods = resolveMethods(spec.methods, { track: track.name, epochs: spec.train.epochs });
  const backend = await initBackend(spec.backend, { blas: spec.blas });
  progress.log(`backend: ${backend.name} (requested ${backend.requested}; ${backend.note})`);

  const orders = spec.orderList ?? [track.defaultOrder(spec)];
  const prepared = await track.prepare(spec, { progress, orders });

  const runId = spec.output.runId ?? new Date().toISOString().replace(/[:.]/g, "-");
  const shardFolder = spec.shard ? `shard-${spec.shard.index}-of-${spec.shard.count}` : null;
  const runDir = join(
    spec.output.resultsDir,
    spec.experiment,
    runId,
    ...(shardFolder ? [shardFolder] : []),
  );
  const root = resolve(".");
  const config = {
    experiment: spec.experiment,
    track: track.name,
    ...prepared.describe,
    methods,
    train: prepared.train,
    grid: {
      orders,
      seeds: spec.seedList ?? [spec.seed],
      methods: methods.map((m) => m.label),
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
    numTasks: prepared.numTasks,
    overwrite: spec.output.overwrite,
  });
  writer.onDivergence({
    stop: spec.stopOnDivergence === true,
    log: (line) => console.error(line),
  });
  progress.log(`run folder: ${runDir}${spec.resume ? " (resumed)" : ""}`);

  const cells = runGrid(methods, {
    orders,
    seedList: spec.seedList,
    seed: spec.seed,
    seeds: spec.seeds,
    shard: spec.shard,
  });
  for (const { m, seed, seeds, order } of cells) {
    const key: RunKey = {
      method: m.label,
      seed,
      ...(spec.orderList ? { order: order ?? "natural" } : {}),
    };
    const stream = await prepared.stream(order);
    let resume: TrainerCheckpoint | undefined;
    if (spec.resume) {
      const point = await resumePoint(writer, { key, numTasks: prepared.numTasks, progress });
      if (point === null) continue;
      resume = point.checkpoint;
    }
    const method = createMethod(m.name, {
      options: spec.methods.find((x) => (x.label ?? x.name) === m.label)?.options,
      track: track.name,
    });
    const before = tf.memory().numTensors;
    try {
      await prepared.runCell({
        stream,
        method,
        epochs: m.epochs,
        seeds,
        rngs: seedStreams(seeds),
        writer,
        key,
        resume,
        progress,
        label: [
          m.label,
          ...(spec.seedList ? [`seed ${seed}`] : []),
          ...(spec.orderList ? [`order ${order ?? "natural"}`] : []),
        ].join(" "),
      });
    } finally {
      method.dispose();
    }
    const leaked = tf.memory().numTensors - before;
    if (leaked > 0) progress.log(`warning: ${leaked} tensors left after ${m.label}`);
  }
  const seconds = await finishRun(writer, { progress, startedAt: t0 });
  return { runDir, seconds, backend };
}

/** One cell of an experiment's grid: a method run with one seed on one order. */
export interface GridCell<M> {
  /** The method. */
  m: M;
  /** The run seed (`seed` column). */
  seed: number;
  /** The seeds of the data, init and method streams. */
  seeds: SeedConfig;
  /** The stream order of this cell. */
  order: StreamOrder;
}

/**
 * The (order × seed × method) grid of a run, in that nesting; with `shard` ({index, count},
 * 1-based) only cells k with k mod count = index − 1.
 *
 * @example
 * ```ts
 * import { runGrid } from "./runner.ts";
 * const cells = runGrid(["a", "b"], { orders: [null], seedList: [0, 1], seed: 0,
 *   seeds: { data: 0, init: 0, method: 0 }, shard: { index: 2, count: 2 } });
 * // cells: b with seed 0, b with seed 1
 * ```
 */
export function runGrid<M>(
  methods: readonly M[],
  options: {
    orders: readonly StreamOrder[];
    seedList: readonly number[] | null | undefined;
    seed: number;
    seeds: SeedConfig;
    shard: { index: number; count: number } | null | undefined;
  },
): GridCell<M>[] {
  const grid = options.orders.flatMap((order) =>
    (options.seedList ?? [options.seed]).flatMap((seed) => {
      const seeds = options.seedList ? { data: seed, init: seed, method: seed } : options.seeds;
      return methods.map((m) => ({ m, seed, seeds, order }));
    })
  );
  const shard = options.shard;
  return shard ? grid.filter((_, k) => k % shard.count === shard.index - 1) : grid;
}

/**
 * Where a resumed run continues the run `key`: null when all its tasks are finished (skip it),
 * otherwise the checkpoint after its last task that has both results and a checkpoint (or
 * undefined: start over). The tables are truncated to that task.
 *
 * @example
 * ```ts ignore
 * const point = await resumePoint(writer, { key, numTasks: 10, progress });
 * ```
 */
export async function resumePoint(
  writer: RunWriter,
  options: { key: RunKey; numTasks: number; progress: Progress },
): Promise<{ checkpoint: TrainerCheckpoint | undefined } | null> {
  const { key } = options;
  const done = writer.finished(key);
  if (done >= options.numTasks) {
    options.progress.log(`[${key.method}] seed ${key.seed}: all ${done} tasks finished, skipped`);
    return null;
  }
  let k = done - 1;
  let checkpoint: TrainerCheckpoint | undefined;
  while (
    k >= 0 &&
    !(checkpoint = await loadCheckpoint(writer.checkpointDir(key), k, { owner: writer.owner }) ??
      undefined)
  ) k--;
  await writer.truncate(key, k + 1);
  options.progress.log(`[${key.method}] seed ${key.seed}: resuming after task ${k + 1}`);
  return { checkpoint };
}

/**
 * The spec of the run in `runDir` (from its config.json), set to continue it. Other flags are
 * refused: a resumed run keeps its own configuration. What decides which native code is loaded
 * is never taken from the file: the BLAS request is `options.blas` (the `--blas` typed now) or
 * `"auto"`, as in a fresh run; nor where it writes besides the run folder (the cache is
 * `options.cacheDir` or `.cache`). A run of another track than `options.track` is refused.
 *
 * @example
 * ```ts ignore
 * const spec = await resumeSpec("results/split-cifar/default", { otherFlags: [], track: "vit" });
 * ```
 */
export async function resumeSpec<S extends ExperimentSpec>(
  runDir: string,
  options: { otherFlags: string[]; track?: string; blas?: BlasRequest; cacheDir?: string },
): Promise<S> {
  const { otherFlags } = options;
  if (otherFlags.length > 0) {
    throw new Error(
      `--resume takes the run's own config (only --blas and --quiet may come with it); drop ${
        otherFlags.map((k) => `--${k}`).join(", ")
      }`,
    );
  }
  const path = join(runDir, "config.json");
  const config = await readJson<{ spec?: S; track?: string }>(path);
  if (!config || typeof config !== "object" || !config.spec || typeof config.spec !== "object") {
    throw new Error(`${path} has no "spec" object (written by an older version?)`);
  }
  const made = config.track ?? "vit";
  if (options.track !== undefined && made !== options.track) {
    throw new Error(
      `${path}: the run was made on the ${made} track; resume it with that track's experiment`,
    );
  }
  if (typeof config.spec.experiment !== "string") {
    throw new Error(`${path}: spec.experiment must be a string`);
  }
  const dir = resolve(runDir);
  const spec: S = structuredClone(config.spec);
  if (basename(dirname(dir)) !== spec.experiment) {
    throw new Error(`${runDir} is not under a folder named ${spec.experiment}`);
  }
  spec.output = {
    ...spec.output,
    resultsDir: dirname(dirname(dir)),
    runId: basename(dir),
    overwrite: false,
    // Where the run may write is not taken from the file either: the cache is `.cache` or the
    // `--cache-dir` typed now.
    cacheDir: options.cacheDir ?? ".cache",
  };
  // Native code is chosen by the person typing the command, never by a results folder.
  spec.blas = options.blas ?? "auto";
  spec.resume = true;
  return spec;
}

/**
 * The end of every run: mark it complete, render its report, log what was written and the time.
 *
 * @example
 * ```ts ignore
 * const seconds = await finishRun(writer, { progress, startedAt: t0 });
 * ```
 */
export async function finishRun(
  writer: RunWriter,
  options: { progress: Progress; startedAt: number },
): Promise<number> {
  await writer.finish();
  const report = await writeRunReport(writer.dir, { png: "auto" });
  options.progress.log(`report: ${report.files.length} files written under ${writer.dir}`);
  for (const w of report.warnings) options.progress.log(`report: ${w}`);
  const seconds = (performance.now() - options.startedAt) / 1000;
  options.progress.log(`done in ${seconds.toFixed(1)} s`);
  return seconds;
}
