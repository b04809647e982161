/**
 * What the experiments share: the method list of a spec (names, labels,
 * options, epoch budgets), the flags every experiment takes (methods, output,
 * backend) and the command-line wrapper (parse → run → exit code).
 *
 * @module
 */

import { basename, dirname, join, resolve } from "@std/path";
import type { BackendName, BlasRequest } from "../backend.ts";
import { readJson } from "../io.ts";
import type { SeedConfig } from "../random.ts";
import { loadCheckpoint, type TrainerCheckpoint } from "../train/checkpoint.ts";
import type { Progress } from "../train/progress.ts";
import type { RunKey, RunWriter } from "./run_writer.ts";
import { writeRunReport } from "../report/run_report.ts";
import { createMethod, methodNames, type Track } from "../methods/registry.ts";
import type { EpochSchedule } from "../train/schedule.ts";
import { flagHelp, type FlagSpec, type FlagValues, parseFlags } from "./flags.ts";

/** One method of an experiment, with its label and optional schedule override. */
export interface MethodSpec {
  /** Registry name. */
  name: string;
  /** Label in tables and plots (default: name). Two entries may share a name with different labels. */
  label?: string;
  /** Method options (validated by the method). */
  options?: Record<string, unknown>;
  /** Epochs per task for this method, overriding the experiment's (e.g. TreeLoRA's reduced schedule). */
  epochs?: EpochSchedule;
}

/** A method entry as written into config.json: every option and the epoch budget resolved. */
export interface ResolvedMethod {
  /** Registry name. */
  name: string;
  /** Unique label. */
  label: string;
  /** The method's resolved options. */
  options: Record<string, unknown>;
  /** Epochs per task. */
  epochs: EpochSchedule;
}

/**
 * Validate a spec's methods (known names, unique labels) and resolve their options and epochs.
 *
 * @example
 * ```ts
 * import { resolveMethods } from "./experiment.ts";
 * const [m] = resolveMethods([{ name: "seqlora" }], { track: "vit", epochs: 4 });
 * // m = { name: "seqlora", label: "seqlora", options: {}, epochs: 4 }
 * ```
 */
export function resolveMethods(
  methods: readonly MethodSpec[],
  options: { track: Track; epochs: EpochSchedule },
): ResolvedMethod[] {
  for (const m of methods) {
    const known = methodNames({ track: options.track });
    if (!known.includes(m.name)) {
      throw new Error(
        `unknown method "${m.name}" on the ${options.track} track; known methods: ${
          known.join(", ")
        }`,
      );
    }
  }
  const labels = methods.map((m) => m.label ?? m.name);
  if (new Set(labels).size !== labels.length) {
    throw new Error(`method labels must be unique; got ${labels.join(", ")}`);
  }
  return methods.map((m) => {
    const method = createMethod(m.name, { options: m.options, track: options.track });
    const resolved = {
      name: m.name,
      label: m.label ?? m.name,
      options: method.options(),
      epochs: m.epochs ?? options.epochs,
    };
    method.dispose();
    return resolved;
  });
}

/** Flags every experiment takes. */
export const COMMON_FLAGS: Record<string, FlagSpec> = {
  methods: {
    type: "string-list",
    help:
      "methods to run, comma-separated: labels of the spec's entries or registered method names",
  },
  "method-options": {
    type: "string",
    help: `JSON options per label, merged into the spec's, e.g. '{"treelora":{"lambda":0.3}}'`,
  },
  backend: { type: "string", help: "auto | tensorflow | wasm | cpu | webgpu" },
  blas: {
    type: "string",
    help:
      "native BLAS matmul on the wasm/cpu backends: auto (find OpenBLAS/MKL/Accelerate; default) " +
      "| off | PATH of a BLAS library",
  },
  out: { type: "string", help: "run folder name under results/<experiment>/" },
  "results-dir": { type: "string", help: "results root" },
  "cache-dir": { type: "string", help: "cache for generated data and pre-trained backbones" },
  seeds: {
    type: "int-list",
    help:
      "several run seeds (e.g. 0,1,2): every method runs once per seed; mean ± std in the tables",
  },
  shard: {
    type: "string",
    help: "i/n: run the i-th of n shares of the run grid (job arrays); `deno task report` merges",
  },
  resume: {
    type: "string",
    help: "continue the run in RUN_DIR from its config.json and checkpoints (no other flags)",
  },
  overwrite: { type: "boolean", help: "replace a run folder that already holds results" },
  quiet: { type: "boolean", help: "no progress output" },
  help: { type: "boolean", help: "print this help" },
};

const BACKENDS = ["auto", "tensorflow", "wasm", "cpu", "webgpu"];

/** The fields of a spec that {@link applyCommonFlags} sets. */
export interface CommonSpec {
  /** The methods. */
  methods: MethodSpec[];
  /** Backend request. */
  backend: BackendName;
  /** Native BLAS request for `initBackend` (`--blas`; absent = "auto"). */
  blas?: BlasRequest;
  /** Output locations. */
  output: { resultsDir: string; cacheDir: string; runId: string | null; overwrite: boolean };
  /** Silence progress output. */
  quiet: boolean;
}

/**
 * Apply the common flags to `spec` in place: `--methods` picks entries by label (or adds a
 * method by name), `--method-options` merges JSON options into entries by label.
 *
 * @example
 * ```ts ignore
 * applyCommonFlags(spec, parseFlags(["--methods", "seqlora"], COMMON_FLAGS), { track: "vit" });
 * ```
 */
export function applyCommonFlags(spec: CommonSpec, f: FlagValues, options: { track: Track }): void {
  if (f.methods) {
    const tokens = f.methods as string[];
    spec.methods = tokens.includes("all")
      ? [
        ...spec.methods,
        ...methodNames({ track: options.track })
          .filter((n) => !spec.methods.some((m) => m.name === n))
          .map((name) => ({ name })),
      ]
      : tokens.map((token) =>
        spec.methods.find((m) => (m.label ?? m.name) === token) ?? { name: token }
      );
  }
  if (f["method-options"] !== undefined) {
    let parsed: Record<string, Record<string, unknown>>;
    try {
      parsed = JSON.parse(f["method-options"] as string);
    } catch (err) {
      throw new Error(`--method-options is not valid JSON: ${(err as Error).message}`);
    }
    for (const [label, options] of Object.entries(parsed)) {
      const entry = spec.methods.find((m) => (m.label ?? m.name) === label);
      if (!entry) {
        throw new Error(
          `--method-options names "${label}", which is not among the methods ${
            spec.methods.map((m) => m.label ?? m.name).join(", ")
          }`,
        );
      }
      entry.options = { ...entry.options, ...options };
    }
  }
  if (f.backend !== undefined) {
    if (!BACKENDS.includes(f.backend as string)) {
      throw new Error(`--backend must be one of ${BACKENDS.join(", ")}, got ${f.backend}`);
    }
    spec.backend = f.backend as BackendName;
  }
  if (f.blas !== undefined) {
    if (f.blas === "") throw new Error(`--blas must be auto, off or a library path, got ""`);
    spec.blas = f.blas as BlasRequest;
  }
  if (f.out !== undefined) spec.output.runId = f.out as string;
  if (f["results-dir"] !== undefined) spec.output.resultsDir = f["results-dir"] as string;
  if (f["cache-dir"] !== undefined) spec.output.cacheDir = f["cache-dir"] as string;
  if (f.overwrite) spec.output.overwrite = true;
  if (f.quiet) spec.quiet = true;
}

/**
 * The command-line wrapper of an experiment: parse `args` against `flags`, print help, build the
 * spec (or, with `--resume RUN_DIR`, the spec stored in that run), run it, print the run folder;
 * returns the exit code (0 ok, 2 bad flags, 1 failure).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runExperimentCli(Deno.args, { usage, flags, spec: (f) => apply(SPEC, f), run }));
 * ```
 */
export async function runExperimentCli<S>(
  args: string[],
  options: {
    usage: string;
    flags: Record<string, FlagSpec>;
    spec: (flags: FlagValues) => S | Promise<S>;
    run: (spec: S) => Promise<{ runDir: string }>;
  },
): Promise<number> {
  let spec: S;
  try {
    const flags = parseFlags(args, options.flags);
    if (flags.help) {
      console.log(flagHelp(options.usage, options.flags));
      return 0;
    }
    if (flags.resume !== undefined) {
      // A resumed run keeps its own configuration: only --quiet may come with --resume.
      const resumed = await resumeSpec<ResumableSpec & { quiet: boolean }>(
        flags.resume as string,
        Object.keys(flags).filter((k) => k !== "resume" && k !== "quiet" && flags[k] !== false),
      );
      if (flags.quiet) resumed.quiet = true;
      spec = resumed as unknown as S;
    } else {
      spec = await options.spec(flags);
    }
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 2;
  }
  try {
    console.log((await options.run(spec)).runDir);
    return 0;
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    if (Deno.env.get("TREELORA_DEBUG")) console.error(err);
    return 1;
  }
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
  order: number | string | null;
}

/**
 * The (order × seed × method) grid of a run, in that nesting; with `shard` ({index, count},
 * 1-based) only cells k with k mod count = index − 1.
 *
 * @example
 * ```ts
 * import { runGrid } from "./experiment.ts";
 * const cells = runGrid(["a", "b"], { orders: [null], seedList: [0, 1], seed: 0,
 *   seeds: { data: 0, init: 0, method: 0 }, shard: { index: 2, count: 2 } });
 * // cells: b with seed 0, b with seed 1
 * ```
 */
export function runGrid<M>(
  methods: readonly M[],
  options: {
    orders: readonly (number | string | null)[];
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
 * Parse `--shard i/n`.
 *
 * @example
 * ```ts
 * import { parseShard } from "./experiment.ts";
 * parseShard("2/4"); // { index: 2, count: 4 }
 * ```
 */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new Error(`--shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4), got ${text}`);
  }
  return { index, count };
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
    k >= 0 && !(checkpoint = await loadCheckpoint(writer.checkpointDir(key), k) ?? undefined)
  ) k--;
  await writer.truncate(key, k + 1);
  options.progress.log(`[${key.method}] seed ${key.seed}: resuming after task ${k + 1}`);
  return { checkpoint };
}

/** What {@link resumeSpec} needs of a spec. */
interface ResumableSpec {
  experiment: string;
  output: { resultsDir: string; cacheDir: string; runId: string | null; overwrite: boolean };
  resume?: boolean;
}

/**
 * The spec of the run in `runDir` (from its config.json), set to continue it. Other flags are
 * refused: a resumed run keeps its own configuration.
 *
 * @example
 * ```ts ignore
 * const spec = await resumeSpec("results/split-cifar/default", []);
 * ```
 */
export async function resumeSpec<S extends ResumableSpec>(
  runDir: string,
  otherFlags: string[],
): Promise<S> {
  if (otherFlags.length > 0) {
    throw new Error(
      `--resume takes the run's own config; drop ${otherFlags.map((k) => `--${k}`).join(", ")}`,
    );
  }
  const config = await readJson<{ spec?: S }>(join(runDir, "config.json"));
  if (!config.spec) {
    throw new Error(`${runDir}/config.json has no "spec" (written by an older version)`);
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
  };
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
