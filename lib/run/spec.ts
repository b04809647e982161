/**
 * What every experiment spec holds, whatever its track: the methods (names,
 * labels, options, epoch budgets), the run grid (seeds, orders, shard), the
 * backend and the output locations. A track's spec extends
 * {@link ExperimentSpec} with its own data, model and schedule fields.
 *
 * @module
 */

import type { BackendName } from "./backend.ts";
import type { BlasRequest } from "../native_blas.ts";
import type { SeedConfig } from "../random.ts";
import { createMethod, methodNames } from "../methods/registry.ts";
import type { Track } from "../methods/method.ts";
import type { EpochSchedule } from "../train/schedule.ts";

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

/** An order of the stream: a class-order seed (ViT; null = natural) or a task-order name (LM). */
export type StreamOrder = number | string | null;

/** Output locations of a run. */
export interface OutputSpec {
  /** Root of the results tree. */
  resultsDir: string;
  /** Cache for generated data and pre-trained backbones. */
  cacheDir: string;
  /** Run folder name; null = timestamp. */
  runId: string | null;
  /** Allow replacing a run folder that already holds results. */
  overwrite: boolean;
}

/** The fields every experiment spec has, whatever its track. */
export interface ExperimentSpec {
  /** Experiment name (the results sub-folder). */
  experiment: string;
  /** Methods to compare, in order. */
  methods: MethodSpec[];
  /** The schedule; every track's has at least the epochs per task. */
  train: { epochs: EpochSchedule };
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
   * Several stream orders (`--orders`): the grid runs every method and seed once per order;
   * tables get an `order` column. Null = the spec's own order only.
   */
  orderList?: StreamOrder[] | null;
  /** Run only the i-th (1-based) of n shares of the order × seed × method grid (`--shard i/n`). */
  shard?: { index: number; count: number } | null;
  /** Backend request. */
  backend: BackendName;
  /** Native BLAS request (`--blas auto|off|PATH`; absent = "auto"). */
  blas?: BlasRequest;
  /** Output locations. */
  output: OutputSpec;
  /** Silence progress output. */
  quiet: boolean;
  /**
   * Stop the run when a loss diverges (`--stop-on-divergence`); absent or false: a warning only
   * (see `DIVERGENCE_FACTOR` in run_writer.ts).
   */
  stopOnDivergence?: boolean;
  /**
   * Continue the run in `output.runId` (set by `--resume <run-dir>` from that folder's
   * config.json): finished methods are skipped, the others continue after their last
   * checkpointed task.
   */
  resume?: boolean;
}

/**
 * Validate a spec's methods (known names, unique labels) and resolve their options and epochs.
 *
 * @example
 * ```ts
 * import { resolveMethods } from "./spec.ts";
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
