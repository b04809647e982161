/**
 * The one command line of the experiments: the flags every track takes
 * (methods, seeds, orders, shard, schedule, backend, output, resume), the
 * track's own flags from its {@link ExperimentTrack}, and the wrapper
 * parse → run → exit code.
 *
 * @module
 */

import type { BackendName, BlasRequest } from "./backend.ts";
import { methodNames } from "../methods/registry.ts";
import type { EpochSchedule } from "../train/schedule.ts";
import { flagHelp, type FlagSpec, type FlagValues, parseFlags } from "../flags.ts";
import { safeSegment } from "../io.ts";
import { resumeSpec, runExperiment } from "./runner.ts";
import type { ExperimentSpec, StreamOrder } from "./spec.ts";
import type { ExperimentTrack } from "./track.ts";

/** Flags every experiment takes, whatever its track. */
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
  epochs: {
    type: "int-list",
    help: "epochs per task of the methods without their own budget: one number, or one per task " +
      "(integers 1–1000)",
  },
  "reduced-epochs": {
    type: "int-list",
    help:
      "epochs per task of the spec's methods that have their own (reduced) budget, e.g. TreeLoRA's " +
      "(integers 1–1000)",
  },
  "batch-size": { type: "number", help: "training batch size (integer 1–65536)" },
  lr: { type: "number", help: "Adam learning rate (constant; 0 < lr ≤ 1)" },
  clip: { type: "number", help: "global gradient-norm clip (0 disables; 0–10⁶)" },
  "max-steps-per-epoch": {
    type: "number",
    help: "cap steps per epoch (smoke runs; recorded; integer 1–10⁷)",
  },
  seed: {
    type: "number",
    help: "run seed: sets the data, init and method seeds (integer 0 to 2³²−1)",
  },
  seeds: {
    type: "int-list",
    help:
      "several run seeds (e.g. 0,1,2; distinct integers 0 to 2³²−1): every method runs once per " +
      "seed; mean ± std in the tables",
  },
  "data-seed": { type: "number", help: "seed of the data stream (shuffles) only (0 to 2³²−1)" },
  "init-seed": { type: "number", help: "seed of the init stream (LoRA, head) only (0 to 2³²−1)" },
  "method-seed": {
    type: "number",
    help: "seed of the method stream (dropout, sampling) only (0 to 2³²−1)",
  },
  orders: {
    type: "string-list",
    help: "several stream orders (the track's --help says which); tables get an order column",
  },
  shard: {
    type: "string",
    help: "i/n: run the i-th of n shares of the run grid (job arrays); `deno task report` merges",
  },
  backend: { type: "string", help: "auto | tensorflow | wasm | cpu | webgpu" },
  blas: {
    type: "string",
    help:
      "native BLAS matmul on the wasm/cpu backends: auto (find OpenBLAS/MKL/Accelerate; default) " +
      "| off | PATH of a BLAS library",
  },
  out: {
    type: "string",
    help: "run folder name under results/<experiment>/ (one folder name: letters, digits, ._+=@,-)",
  },
  "results-dir": { type: "string", help: "results root" },
  "cache-dir": { type: "string", help: "cache for generated data and pre-trained backbones" },
  resume: {
    type: "string",
    help: "continue the run in RUN_DIR from its config.json and checkpoints (only --blas, " +
      "--cache-dir and --quiet may come with it)",
  },
  overwrite: {
    type: "boolean",
    help: "replace a run folder that already holds results (the old folder is emptied first)",
  },
  "stop-on-divergence": {
    type: "boolean",
    help: "stop the run when a loss diverges (above 10× its first value for 10 logged steps; " +
      "default: a warning in the log, status.json and REPORT.md)",
  },
  quiet: { type: "boolean", help: "no progress output" },
  help: { type: "boolean", help: "print this help" },
};

const BACKENDS = ["auto", "tensorflow", "wasm", "cpu", "webgpu"];

/** The largest count any flag accepts unless it names a smaller one (10⁷). */
export const MAX_COUNT = 10_000_000;

/**
 * A flag value that must be a positive integer, at most `options.max` (default
 * {@link MAX_COUNT}: a count beyond it is a typo, and would run for ever).
 *
 * @example
 * ```ts
 * import { positiveInt } from "./cli.ts";
 * positiveInt("batch-size", 32, { max: 65536 }); // 32
 * ```
 */
export function positiveInt(name: string, value: number, options: { max?: number } = {}): number {
  const max = options.max ?? MAX_COUNT;
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    throw new Error(`--${name} must be an integer from 1 to ${max}, got ${value}`);
  }
  return value;
}

/**
 * A flag value that must be a finite number in a range: `above` (exclusive) or `min`
 * (inclusive) below, `max` (inclusive) above.
 *
 * @example
 * ```ts
 * import { numberInRange } from "./cli.ts";
 * numberInRange("lr", 1e-3, { above: 0, max: 1 }); // 0.001
 * ```
 */
export function numberInRange(
  name: string,
  value: number,
  options: { above?: number; min?: number; max: number; below?: boolean },
): number {
  const low = options.above !== undefined
    ? value > options.above
    : options.min === undefined || value >= options.min;
  const high = options.below ? value < options.max : value <= options.max;
  if (!Number.isFinite(value) || !low || !high) {
    const from = options.above !== undefined
      ? `above ${options.above}`
      : options.min !== undefined
      ? `from ${options.min}`
      : "";
    throw new Error(
      `--${name} must be a number ${from} ${options.below ? "and below" : "up to"} ${options.max}` +
        `, got ${value}`,
    );
  }
  return value;
}

/** Seeds are integers the RNG takes as they are: 0 ≤ seed < 2³². */
export const SEED_LIMIT = 2 ** 32;

/**
 * A seed flag value: an integer in [0, 2³²) (the RNG's range: larger values would alias).
 *
 * @example
 * ```ts
 * import { seedValue } from "./cli.ts";
 * seedValue("seed", 7); // 7
 * ```
 */
export function seedValue(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value >= SEED_LIMIT) {
    throw new Error(`--${name} must be an integer from 0 to ${SEED_LIMIT - 1}, got ${value}`);
  }
  return value;
}

/** Epochs per task beyond this are refused (the longest schedule of the paper is 20). */
export const MAX_EPOCHS = 1000;

/**
 * Parse `--shard i/n`.
 *
 * @example
 * ```ts
 * import { parseShard } from "./cli.ts";
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
 * All flags of an experiment on `track`: the common ones and the track's own.
 *
 * @example
 * ```ts ignore
 * const flags = parseFlags(Deno.args, experimentFlags(VIT_TRACK));
 * ```
 */
export function experimentFlags<S extends ExperimentSpec, Stream>(
  track: ExperimentTrack<S, Stream>,
): Record<string, FlagSpec> {
  return { ...COMMON_FLAGS, ...track.flags };
}

/**
 * A copy of `base` with parsed flag values applied: the track's own flags first, then the
 * common ones (schedule, seeds, orders, shard, methods, backend, output).
 *
 * @example
 * ```ts ignore
 * const spec = applyFlags(SPEC, { flags: parseFlags(["--epochs", "1"], experimentFlags(VIT_TRACK)),
 *   track: VIT_TRACK });
 * ```
 */
export function applyFlags<S extends ExperimentSpec, Stream>(
  base: S,
  options: { flags: FlagValues; track: ExperimentTrack<S, Stream> },
): S {
  const { flags: f, track } = options;
  const spec: S = structuredClone(base);
  const num = (k: string) => f[k] as number | undefined;
  track.applyFlags(spec, f);
  if (f.orders !== undefined) {
    const list: StreamOrder[] = (f.orders as string[]).map((t) => track.parseOrder(t));
    if (new Set(list).size !== list.length) throw new Error("--orders lists an order twice");
    track.setOrders(spec, list, f);
  }

  // The schedule (after the orders: an order fixes the number of tasks).
  const numTasks = track.plannedTasks(spec);
  const schedule = (name: string): EpochSchedule => {
    const e = f[name] as number[];
    e.forEach((v) => positiveInt(name, v, { max: MAX_EPOCHS }));
    if (e.length !== 1 && e.length !== numTasks) {
      throw new Error(
        `--${name} lists ${e.length} numbers; give one, or one per task (${numTasks})`,
      );
    }
    return e.length === 1 ? e[0] : e;
  };
  if (f.epochs) spec.train.epochs = schedule("epochs");
  if (f["reduced-epochs"]) {
    const reduced = schedule("reduced-epochs");
    for (const m of spec.methods) if (m.epochs !== undefined) m.epochs = reduced;
  }
  const train = spec.train as unknown as Record<string, unknown>;
  if (num("batch-size") !== undefined) {
    train.batchSize = positiveInt("batch-size", num("batch-size")!, { max: 65536 });
  }
  if (num("lr") !== undefined) train.lr = numberInRange("lr", num("lr")!, { above: 0, max: 1 });
  if (num("clip") !== undefined) {
    train.clipNorm = numberInRange("clip", num("clip")!, { min: 0, max: 1e6 });
  }
  if (num("max-steps-per-epoch") !== undefined) {
    train.maxStepsPerEpoch = positiveInt("max-steps-per-epoch", num("max-steps-per-epoch")!);
  }

  // Seeds, shard.
  if (num("seed") !== undefined) {
    const s = seedValue("seed", num("seed")!);
    spec.seed = s;
    spec.seeds = { data: s, init: s, method: s };
  }
  if (f.seeds !== undefined) {
    const list = f.seeds as number[];
    list.forEach((v) => seedValue("seeds", v));
    if (new Set(list).size !== list.length) {
      throw new Error(`--seeds lists a seed twice: ${list.join(",")}`);
    }
    for (const k of ["seed", "data-seed", "init-seed", "method-seed"]) {
      if (f[k] !== undefined) throw new Error(`--seeds and --${k} cannot be combined`);
    }
    spec.seedList = list;
  }
  if (num("data-seed") !== undefined) spec.seeds.data = seedValue("data-seed", num("data-seed")!);
  if (num("init-seed") !== undefined) spec.seeds.init = seedValue("init-seed", num("init-seed")!);
  if (num("method-seed") !== undefined) {
    spec.seeds.method = seedValue("method-seed", num("method-seed")!);
  }
  if (f.shard !== undefined) spec.shard = parseShard(f.shard as string);

  // Methods, backend, output.
  if (f.methods) {
    const tokens = f.methods as string[];
    spec.methods = tokens.includes("all")
      ? [
        ...spec.methods,
        ...methodNames({ track: track.name })
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
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new Error(
        `--method-options must be a JSON object of objects keyed by method label, got ${
          f["method-options"]
        }`,
      );
    }
    for (const [label, options] of Object.entries(parsed)) {
      if (options === null || typeof options !== "object" || Array.isArray(options)) {
        throw new Error(
          `--method-options: the options of "${label}" must be an object ` +
            `(e.g. {"${label}": {"lambda": 0.3}}), got ${JSON.stringify(options)}`,
        );
      }
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
  if (f.out !== undefined) spec.output.runId = safeSegment(f.out as string, "--out");
  if (f["results-dir"] !== undefined) spec.output.resultsDir = f["results-dir"] as string;
  if (f["cache-dir"] !== undefined) spec.output.cacheDir = f["cache-dir"] as string;
  if (f.overwrite) spec.output.overwrite = true;
  if (f.quiet) spec.quiet = true;
  if (f["stop-on-divergence"]) spec.stopOnDivergence = true;
  return spec;
}

/**
 * The command line of an experiment: parse `args` against the common and the track's flags,
 * print help, build the spec from `spec` (or, with `--resume RUN_DIR`, the spec stored in that
 * run), run it, print the run folder; returns the exit code (0 ok, 2 bad flags, 1 failure).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runCli(Deno.args, { spec: SPEC, track: VIT_TRACK }));
 * ```
 */
export async function runCli<S extends ExperimentSpec, Stream>(
  args: string[],
  options: { spec: S; track: ExperimentTrack<S, Stream>; usage?: string },
): Promise<number> {
  const { track } = options;
  const specs = experimentFlags(track);
  let spec: S;
  try {
    const flags = parseFlags(args, specs);
    if (flags.help) {
      console.log(flagHelp(options.usage ?? track.usage, specs));
      return 0;
    }
    if (flags.resume !== undefined) {
      // A resumed run keeps its own configuration: only --quiet, --blas and --cache-dir (what
      // this machine loads and where it caches, never taken from the run folder) may come with it.
      const allowed = ["resume", "quiet", "blas", "cache-dir"];
      if (flags.blas === "") throw new Error(`--blas must be auto, off or a library path, got ""`);
      spec = await resumeSpec<S>(flags.resume as string, {
        otherFlags: Object.keys(flags).filter((k) => !allowed.includes(k) && flags[k] !== false),
        track: track.name,
        blas: flags.blas as BlasRequest | undefined,
        cacheDir: flags["cache-dir"] as string | undefined,
      });
      // Progress output is this command's choice too, not the stored run's.
      spec.quiet = flags.quiet === true;
    } else {
      spec = applyFlags(options.spec, { flags, track });
    }
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 2;
  }
  try {
    console.log((await runExperiment(spec, track)).runDir);
    return 0;
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    if (Deno.env.get("TREELORA_DEBUG")) console.error(err);
    return 1;
  }
}
