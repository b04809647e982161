/**
 * Percentile-bootstrap intervals over test examples for the LM track's
 * scores: a task's final score, OP (`op_trace`) and BWT (`bwt_trace`).
 *
 * A run cell (one method, seed and order) is a list of rounds: after training
 * task t, the per-example scores (0–100) of every task seen so far. One
 * bootstrap replicate draws, for every task, n indices with replacement from
 * its n test examples, and uses the **same** indices in every round and in
 * every cell (seeds and orders score the same test examples), so the
 * difference R[T,i] − R[i,i] inside BWT is paired, as it is in the data. The
 * replicate's score matrix R* gives OP* = (1/T) Σ_i R*[T,i] and BWT* =
 * (1/T) Σ_i (R*[T,i] − R*[i,i]) (the formulas of cl_metrics.ts, called from
 * here); with several cells, the replicate value is the mean over the cells.
 * The interval is [q(α/2), q(1 − α/2)] of the replicate values, q the
 * linear-interpolation quantile (R's type 7) over the sorted replicates.
 *
 * The interval covers the test-sampling variation only: with several seeds
 * it is the interval of the seed mean for these seeds, and the seed-to-seed
 * spread is reported beside it (mean ± std).
 *
 * @module
 */

import { Rng } from "../random.ts";
import { bwtTrace, opTrace } from "./cl_metrics.ts";

/** One run cell: `rounds[t]` holds, per task seen after training task t+1, its per-example scores. */
export interface BootstrapCell {
  /** Task names in stream order (length T). */
  tasks: readonly string[];
  /** `rounds[t][i]`: scores (0–100) of task i's test examples after training task t (i ≤ t). */
  rounds: readonly (readonly (readonly number[])[])[];
}

/** A point estimate and its interval. */
export interface Interval {
  /** The statistic on the data as observed. */
  value: number;
  /** Lower end. */
  low: number;
  /** Upper end. */
  high: number;
}

/** Intervals of one group of cells (their mean). */
export interface BootstrapIntervals {
  /** OP of the final matrix (`op_trace`). */
  op: Interval;
  /** BWT (`bwt_trace`); NaN for one task. */
  bwt: Interval;
  /** The final score of each task, by name (in the first cell's order). */
  finalScores: { task: string; interval: Interval }[];
  /** Replicates drawn. */
  replicates: number;
  /** Coverage, e.g. 0.95. */
  level: number;
}

/** Options of {@link bootstrapIntervals}. */
export interface BootstrapOptions {
  /** Replicates (default 1000). */
  replicates?: number;
  /** Coverage (default 0.95). */
  level?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
}

/**
 * The type-7 quantile of sorted values: `q(p) = x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋])`, h = (n−1)p.
 *
 * @example
 * ```ts
 * import { quantileSorted } from "./bootstrap.ts";
 * quantileSorted([0, 10, 20, 30], 0.5); // 15
 * ```
 */
export function quantileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError("quantileSorted: no values");
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The score matrix of a cell when task `name`'s examples are taken at `indices.get(name)`. */
function matrixOf(cell: BootstrapCell, indices: Map<string, Int32Array> | null): number[][] {
  const T = cell.tasks.length;
  return cell.rounds.map((round, t) =>
    Array.from({ length: T }, (_, i) => {
      if (i > t) return NaN;
      const scores = round[i];
      const idx = indices?.get(cell.tasks[i]);
      if (!idx) return mean(scores);
      let s = 0;
      for (let k = 0; k < idx.length; k++) s += scores[idx[k]];
      return s / idx.length;
    })
  );
}

function validate(cells: readonly BootstrapCell[]): Map<string, number> {
  if (cells.length === 0) throw new RangeError("bootstrapIntervals: no cells");
  const sizes = new Map<string, number>();
  const names = [...cells[0].tasks].sort().join("\u0000");
  cells.forEach((cell, c) => {
    const T = cell.tasks.length;
    if ([...cell.tasks].sort().join("\u0000") !== names) {
      throw new RangeError(
        `bootstrapIntervals: cell ${c} has tasks ${cell.tasks.join(", ")}, cell 0 has ` +
          `${cells[0].tasks.join(", ")}; cells pooled together must share their tasks`,
      );
    }
    if (T === 0 || cell.rounds.length !== T) {
      throw new RangeError(
        `bootstrapIntervals: cell ${c} has ${T} tasks and ${cell.rounds.length} rounds; ` +
          "expected one round per task (a complete run)",
      );
    }
    cell.rounds.forEach((round, t) => {
      if (round.length < t + 1) {
        throw new RangeError(
          `bootstrapIntervals: cell ${c}, round ${t + 1} scores ${round.length} tasks; expected ${
            t + 1
          }`,
        );
      }
      for (let i = 0; i <= t; i++) {
        const name = cell.tasks[i];
        const n = round[i].length;
        const known = sizes.get(name);
        if (n === 0 || (known !== undefined && known !== n)) {
          throw new RangeError(
            `bootstrapIntervals: task ${name} has ${n} scored examples in cell ${c}, round ${
              t + 1
            }, but ${known ?? "at least 1"} elsewhere; every round must score the same test set`,
          );
        }
        sizes.set(name, n);
      }
    });
  });
  return sizes;
}

/**
 * Percentile-bootstrap intervals of the mean OP, BWT and final task scores over `cells`.
 *
 * @example
 * ```ts
 * import { bootstrapIntervals } from "./bootstrap.ts";
 * const cell = { tasks: ["a"], rounds: [[[0, 100, 100, 0]]] };
 * const r = bootstrapIntervals([cell], { replicates: 200, seed: 1 });
 * r.op.value; // 50
 * r.op.low <= 50 && 50 <= r.op.high; // true
 * ```
 */
export function bootstrapIntervals(
  cells: readonly BootstrapCell[],
  options: BootstrapOptions = {},
): BootstrapIntervals {
  const replicates = options.replicates ?? 1000;
  const level = options.level ?? 0.95;
  if (!Number.isInteger(replicates) || replicates < 2) {
    throw new RangeError(
      `bootstrapIntervals: replicates must be an integer >= 2, got ${replicates}`,
    );
  }
  if (!(level > 0 && level < 1)) {
    throw new RangeError(`bootstrapIntervals: level must be in (0, 1), got ${level}`);
  }
  const sizes = validate(cells);
  const names = cells[0].tasks;
  const stats = (indices: Map<string, Int32Array> | null) => {
    const Rs = cells.map((c) => matrixOf(c, indices));
    const finals = names.map((name) =>
      mean(Rs.map((R, c) => R[R.length - 1][cells[c].tasks.indexOf(name)]))
    );
    return {
      op: mean(Rs.map((R) => opTrace(R))),
      bwt: mean(Rs.map((R) => bwtTrace(R))),
      finals,
    };
  };
  const observed = stats(null);
  const rng = new Rng(options.seed ?? 0);
  const taskOrder = [...sizes.keys()].sort();
  const ops: number[] = [];
  const bwts: number[] = [];
  const finals: number[][] = names.map(() => []);
  for (let b = 0; b < replicates; b++) {
    const indices = new Map<string, Int32Array>();
    for (const name of taskOrder) {
      const n = sizes.get(name)!;
      const idx = new Int32Array(n);
      for (let k = 0; k < n; k++) idx[k] = rng.int(n);
      indices.set(name, idx);
    }
    const s = stats(indices);
    ops.push(s.op);
    bwts.push(s.bwt);
    s.finals.forEach((v, i) => finals[i].push(v));
  }
  const alpha = (1 - level) / 2;
  const interval = (value: number, xs: number[]): Interval => {
    if (!Number.isFinite(value)) return { value, low: NaN, high: NaN };
    const sorted = [...xs].sort((a, b) => a - b);
    return { value, low: quantileSorted(sorted, alpha), high: quantileSorted(sorted, 1 - alpha) };
  };
  return {
    op: interval(observed.op, ops),
    bwt: interval(observed.bwt, bwts),
    finalScores: names.map((task, i) => ({
      task,
      interval: interval(observed.finals[i], finals[i]),
    })),
    replicates,
    level,
  };
}
