/**
 * Continual-learning metrics as pure functions of the accuracy matrix R.
 *
 * **Indexing.** In code, `R[i][j]` (0-based) is the score on task j's test set
 * after training through task i. Scores are on a 0–100 scale; `NaN` marks a
 * pair that was not evaluated. The formula texts use the papers' 1-based
 * notation: `R[t,j]` with tasks 1..T, so code `R[T - 1][j - 1]` is formula
 * `R[T,j]`. Rows are the training stage and columns the evaluated task (GEM's
 * layout; TreeLoRA's `collect_results` stores the transpose).
 *
 * **Validation.** Every metric checks that R is a non-empty square array of
 * numbers, that no entry is ±Infinity, and that every finite entry lies in
 * [0, 100]. All metrics except `fwt_gem` need the lower triangle (i ≥ j,
 * diagonal included) to be finite and throw otherwise, naming the entry.
 * `fwt_gem` needs the superdiagonal R[i−1,i] and a baseline vector; it returns
 * `NaN` when either is missing rather than throwing.
 *
 * **T = 1.** Metrics that compare stages (forgetting, BWT, FWT) return `NaN`
 * for a single task, never 0: nothing can have been forgotten or transferred,
 * and a 0 would be averaged into tables as if it were a measurement. This
 * includes `bwt_trace` and `bwt_treelora_code`, whose formulas would evaluate
 * to 0 at T = 1. Accuracy metrics are defined for T ≥ 1.
 *
 * **Forgetting.** "Forgetting" means several things across codebases (see
 * anchors.md §4). `forgetting_max` here is Chaudhry et al. (2018):
 * f_j = max_{l=j..T−1} R[l,j] − R[T,j] for j = 1..T−1 — the best score task j
 * ever had in a row *before the last*, starting from the row that trained it,
 * minus its final score. It is not clipped and can be negative (when the final
 * score beats every earlier one). `forgetting_first_last` is Avalanche's
 * R[j,j] − R[T,j], which averages to −`bwt_gem`.
 *
 * @module
 */

/** The accuracy matrix: `R[i][j]` = score (0–100) on task j after training through task i. */
export type AccuracyMatrix = readonly (readonly number[])[];

/** Which part of R a metric reads. */
export type MetricRequirement = "lower" | "upper";

/** Options shared by metric functions. */
export interface MetricOptions {
  /**
   * FWT baseline b: `baseline[j]` is the score on task j at initialisation
   * (before training on any task), same 0–100 scale, length T. Entry 0 is
   * not used. Only `fwt_gem` reads it.
   */
  baseline?: readonly number[];
}

/** A named metric with its formula, registered in {@link CL_METRICS}. */
export interface ClMetric {
  /** Stable id, e.g. `bwt_gem`. */
  name: string;
  /** The formula as text (1-based notation, tasks 1..T). */
  formula: string;
  /** True when a larger value is better. */
  higherIsBetter: boolean;
  /** `lower`: needs the lower triangle incl. diagonal; `upper`: needs the superdiagonal and a baseline. */
  requires: MetricRequirement;
  /** Smallest T for which the metric is defined; below it the metric is `NaN`. */
  minTasks: number;
  /** Compute the metric. */
  compute(R: AccuracyMatrix, options?: MetricOptions): number;
}

/** One row of {@link computeMetrics}'s output. */
export interface MetricRow {
  /** Metric id. */
  metric: string;
  /** Value (`NaN` when undefined for this R). */
  value: number;
  /** Formula text. */
  formula: string;
}

// ---------------------------------------------------------------------------
// Validation

/**
 * Check that `R` is a valid accuracy matrix; throw a descriptive error if not.
 *
 * Always checked: R is a non-empty array of arrays, square (every row has T
 * entries), every entry is a number, none is ±Infinity, and every finite entry
 * is in [0, 100]. With `requires: "lower"`, every entry with i ≥ j must also be
 * finite (not `NaN`). `name` prefixes the error messages.
 *
 * @example
 * ```ts
 * import { validateAccuracyMatrix } from "./cl_metrics.ts";
 * validateAccuracyMatrix([[90, NaN], [80, 95]], { requires: "lower" });
 * ```
 */
export function validateAccuracyMatrix(
  R: AccuracyMatrix,
  options: { requires?: MetricRequirement | "none"; name?: string } = {},
): void {
  const who = options.name ? `${options.name}: ` : "";
  if (!Array.isArray(R)) {
    throw new TypeError(`${who}accuracy matrix must be an array of rows, got ${typeof R}`);
  }
  const T = R.length;
  if (T === 0) throw new RangeError(`${who}accuracy matrix is empty (T = 0)`);
  for (let i = 0; i < T; i++) {
    const row = R[i];
    if (!Array.isArray(row)) {
      throw new TypeError(`${who}row ${i} of the accuracy matrix is not an array`);
    }
    if (row.length !== T) {
      throw new RangeError(
        `${who}accuracy matrix must be square (T × T with T = ${T} rows), ` +
          `but row ${i} has ${row.length} entries`,
      );
    }
    for (let j = 0; j < T; j++) {
      const v = row[j];
      if (typeof v !== "number") {
        throw new TypeError(`${who}R[${i}][${j}] must be a number, got ${JSON.stringify(v)}`);
      }
      if (v === Infinity || v === -Infinity) {
        throw new RangeError(`${who}R[${i}][${j}] is ${v}; scores must be finite or NaN`);
      }
      if (!Number.isNaN(v) && (v < 0 || v > 100)) {
        throw new RangeError(`${who}R[${i}][${j}] = ${v} is outside the 0–100 score scale`);
      }
      if (options.requires === "lower" && j <= i && Number.isNaN(v)) {
        throw new RangeError(
          `${who}R[${i}][${j}] is NaN, but the lower triangle (trained-through i ≥ ` +
            `evaluated j, 0-based) must be evaluated`,
        );
      }
    }
  }
}

function lower(R: AccuracyMatrix, name: string): number {
  validateAccuracyMatrix(R, { requires: "lower", name });
  return R.length;
}

function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** f_j^k = max_{l=j..k−1} R[l][j] − R[k][j] (0-based k, j < k). */
function forgettingOf(R: AccuracyMatrix, j: number, k: number): number {
  let best = -Infinity;
  for (let l = j; l < k; l++) best = Math.max(best, R[l][j]);
  return best - R[k][j];
}

// ---------------------------------------------------------------------------
// Per-stage helpers (for plots)

/**
 * Average accuracy after each stage: A_t = (1/t) Σ_{i=1..t} R[t,i], for t = 1..T.
 * Element t−1 of the result is A_t. Needs the lower triangle.
 *
 * @example
 * ```ts
 * import { accuracyAfterEachTask } from "./cl_metrics.ts";
 * accuracyAfterEachTask([[80, NaN], [70, 90]]); // [80, 80]
 * ```
 */
export function accuracyAfterEachTask(R: AccuracyMatrix): number[] {
  const T = lower(R, "accuracyAfterEachTask");
  const out: number[] = [];
  for (let t = 0; t < T; t++) out.push(mean(R[t].slice(0, t + 1)));
  return out;
}

/**
 * Average forgetting after each stage (Chaudhry), for k = 1..T:
 * F_k = (1/(k−1)) Σ_{j=1..k−1} (max_{l=j..k−1} R[l,j] − R[k,j]).
 * Element k−1 of the result is F_k. F_1 is `NaN` (no earlier task exists,
 * so forgetting is undefined — plots drop it). F_T equals {@link forgettingMax}.
 * Needs the lower triangle.
 *
 * @example
 * ```ts
 * import { forgettingAfterEachTask } from "./cl_metrics.ts";
 * forgettingAfterEachTask([[80, NaN], [70, 90]]); // [NaN, 10]
 * ```
 */
export function forgettingAfterEachTask(R: AccuracyMatrix): number[] {
  const T = lower(R, "forgettingAfterEachTask");
  const out: number[] = [NaN];
  for (let k = 1; k < T; k++) {
    const fs: number[] = [];
    for (let j = 0; j < k; j++) fs.push(forgettingOf(R, j, k));
    out.push(mean(fs));
  }
  return out;
}

/**
 * Forgetting of each old task at the end (Chaudhry):
 * f_j = max_{l=j..T−1} R[l,j] − R[T,j] for j = 1..T−1 (not clipped; may be < 0).
 * The result has T−1 entries; index j (0-based) is task j, so the last task,
 * which cannot have been forgotten, has no entry. Empty for T = 1.
 *
 * @example
 * ```ts
 * import { forgettingPerTask } from "./cl_metrics.ts";
 * forgettingPerTask([[80, NaN, NaN], [88, 90, NaN], [70, 75, 85]]); // [18, 15]
 * ```
 */
export function forgettingPerTask(R: AccuracyMatrix): number[] {
  const T = lower(R, "forgettingPerTask");
  const out: number[] = [];
  for (let j = 0; j < T - 1; j++) out.push(forgettingOf(R, j, T - 1));
  return out;
}

// ---------------------------------------------------------------------------
// Metrics

/**
 * `acc_final`: ACC = (1/T) Σ_{j=1..T} R[T,j] — mean of the last row (GEM's ACC, "Last").
 *
 * @example
 * ```ts
 * import { accFinal } from "./cl_metrics.ts";
 * accFinal([[80, NaN], [70, 90]]); // 80
 * ```
 */
export function accFinal(R: AccuracyMatrix): number {
  const T = lower(R, "acc_final");
  return mean(R[T - 1]);
}

/**
 * `acc_avg_incremental`: Ā = (1/T) Σ_{t=1..T} A_t with A_t = (1/t) Σ_{i=1..t} R[t,i]
 * (iCaRL's average incremental accuracy; each stage weighted equally).
 *
 * @example
 * ```ts
 * import { accAvgIncremental } from "./cl_metrics.ts";
 * accAvgIncremental([[80, NaN], [70, 90]]); // (80 + 80) / 2 = 80
 * ```
 */
export function accAvgIncremental(R: AccuracyMatrix): number {
  lower(R, "acc_avg_incremental");
  return mean(accuracyAfterEachTask(R));
}

/**
 * `op_trace`: OP_T = (1/T) Σ_{i=1..T} R[T,i] (TRACE's overall performance;
 * TreeLoRA's "Last Average"). Numerically equal to {@link accFinal}.
 *
 * @example
 * ```ts
 * import { opTrace } from "./cl_metrics.ts";
 * opTrace([[80, NaN], [70, 90]]); // 80
 * ```
 */
export function opTrace(R: AccuracyMatrix): number {
  const T = lower(R, "op_trace");
  return mean(R[T - 1].slice(0, T));
}

/**
 * `all_average_treelora`: mean of all lower-triangle entries R[t,i], i ≤ t,
 * diagonal included (TreeLoRA's "All Average"; stages weighted by their task
 * count, so it differs from {@link accAvgIncremental}).
 *
 * @example
 * ```ts
 * import { allAverageTreelora } from "./cl_metrics.ts";
 * allAverageTreelora([[80, NaN], [70, 90]]); // (80 + 70 + 90) / 3 = 80
 * ```
 */
export function allAverageTreelora(R: AccuracyMatrix): number {
  const T = lower(R, "all_average_treelora");
  const xs: number[] = [];
  for (let t = 0; t < T; t++) xs.push(...R[t].slice(0, t + 1));
  return mean(xs);
}

/**
 * `learning_acc`: LA = (1/T) Σ_{i=1..T} R[i,i] — mean of the diagonal (plasticity).
 *
 * @example
 * ```ts
 * import { learningAcc } from "./cl_metrics.ts";
 * learningAcc([[80, NaN], [70, 90]]); // 85
 * ```
 */
export function learningAcc(R: AccuracyMatrix): number {
  const T = lower(R, "learning_acc");
  const xs: number[] = [];
  for (let i = 0; i < T; i++) xs.push(R[i][i]);
  return mean(xs);
}

/**
 * `forgetting_max` (Chaudhry et al. 2018):
 * F_T = (1/(T−1)) Σ_{j=1..T−1} f_j with f_j = max_{l=j..T−1} R[l,j] − R[T,j].
 * The max runs over the rows before the last, from the row that trained task
 * j; f_j is not clipped. `NaN` for T = 1. Higher = more forgetting.
 *
 * @example
 * ```ts
 * import { forgettingMax } from "./cl_metrics.ts";
 * forgettingMax([[80, NaN], [70, 90]]); // 10
 * ```
 */
export function forgettingMax(R: AccuracyMatrix): number {
  const T = lower(R, "forgetting_max");
  if (T < 2) return NaN;
  return mean(forgettingPerTask(R));
}

/**
 * `forgetting_first_last` (Avalanche):
 * F = (1/(T−1)) Σ_{j=1..T−1} (R[j,j] − R[T,j]); equals −{@link bwtGem}. `NaN` for T = 1.
 *
 * @example
 * ```ts
 * import { forgettingFirstLast } from "./cl_metrics.ts";
 * forgettingFirstLast([[80, NaN], [70, 90]]); // 10
 * ```
 */
export function forgettingFirstLast(R: AccuracyMatrix): number {
  const T = lower(R, "forgetting_first_last");
  if (T < 2) return NaN;
  const xs: number[] = [];
  for (let j = 0; j < T - 1; j++) xs.push(R[j][j] - R[T - 1][j]);
  return mean(xs);
}

/**
 * `bwt_gem` (Lopez-Paz & Ranzato 2017): BWT = (1/(T−1)) Σ_{i=1..T−1} (R[T,i] − R[i,i]).
 * Negative means forgetting. `NaN` for T = 1.
 *
 * @example
 * ```ts
 * import { bwtGem } from "./cl_metrics.ts";
 * bwtGem([[80, NaN], [70, 90]]); // -10
 * ```
 */
export function bwtGem(R: AccuracyMatrix): number {
  const T = lower(R, "bwt_gem");
  if (T < 2) return NaN;
  const xs: number[] = [];
  for (let i = 0; i < T - 1; i++) xs.push(R[T - 1][i] - R[i][i]);
  return mean(xs);
}

/**
 * `bwt_trace` (TRACE): BWT_T = (1/T) Σ_{i=1..T} (R[T,i] − R[i,i]) = BWT_gem · (T−1)/T
 * (the i = T term is 0). `NaN` for T = 1.
 *
 * @example
 * ```ts
 * import { bwtTrace } from "./cl_metrics.ts";
 * bwtTrace([[80, NaN], [70, 90]]); // -5
 * ```
 */
export function bwtTrace(R: AccuracyMatrix): number {
  const T = lower(R, "bwt_trace");
  if (T < 2) return NaN;
  const xs: number[] = [];
  for (let i = 0; i < T; i++) xs.push(R[T - 1][i] - R[i][i]);
  return mean(xs);
}

/**
 * `bwt_treelora_code` (TreeLoRA's released `collect_results`):
 * BWT_code = (1/T) Σ_{i=1..T} min(R[T,i] − R[i,i], 0). Positive transfer is
 * clipped to 0, so the value is ≤ 0 (the paper reports its magnitude).
 * `NaN` for T = 1. Report it beside {@link bwtGem}, never instead of it.
 *
 * @example
 * ```ts
 * import { bwtTreeloraCode } from "./cl_metrics.ts";
 * bwtTreeloraCode([[80, NaN], [85, 90]]); // 0 (positive transfer clipped)
 * ```
 */
export function bwtTreeloraCode(R: AccuracyMatrix): number {
  const T = lower(R, "bwt_treelora_code");
  if (T < 2) return NaN;
  const xs: number[] = [];
  for (let i = 0; i < T; i++) xs.push(Math.min(R[T - 1][i] - R[i][i], 0));
  return mean(xs);
}

/**
 * `fwt_gem` (Lopez-Paz & Ranzato 2017):
 * FWT = (1/(T−1)) Σ_{i=2..T} (R[i−1,i] − b_i), b_i = score on task i at initialisation.
 *
 * Reads only the superdiagonal (task i evaluated before training on it) and
 * `options.baseline` (length T; entry 0 unused). Returns `NaN` when T = 1,
 * when no baseline is given, or when any needed R[i−1,i] or b_i is `NaN`.
 * Throws when the baseline has the wrong length or an invalid value.
 *
 * @example
 * ```ts
 * import { fwtGem } from "./cl_metrics.ts";
 * fwtGem([[80, 20], [70, 90]], { baseline: [10, 10] }); // 10
 * fwtGem([[80, NaN], [70, 90]]); // NaN (no upper triangle, no baseline)
 * ```
 */
export function fwtGem(R: AccuracyMatrix, options: MetricOptions = {}): number {
  validateAccuracyMatrix(R, { name: "fwt_gem" });
  const T = R.length;
  const b = options.baseline;
  if (b !== undefined) validateBaseline(b, T);
  if (T < 2 || b === undefined) return NaN;
  const xs: number[] = [];
  for (let i = 1; i < T; i++) xs.push(R[i - 1][i] - b[i]);
  return xs.some(Number.isNaN) ? NaN : mean(xs);
}

function validateBaseline(b: readonly number[], T: number): void {
  if (!Array.isArray(b)) {
    throw new TypeError(`fwt_gem: baseline must be an array of T = ${T} scores`);
  }
  if (b.length !== T) {
    throw new RangeError(`fwt_gem: baseline has ${b.length} entries, expected T = ${T}`);
  }
  b.forEach((v, i) => {
    if (typeof v !== "number") {
      throw new TypeError(`fwt_gem: baseline[${i}] must be a number, got ${JSON.stringify(v)}`);
    }
    if (v === Infinity || v === -Infinity) {
      throw new RangeError(`fwt_gem: baseline[${i}] is ${v}; scores must be finite or NaN`);
    }
    if (!Number.isNaN(v) && (v < 0 || v > 100)) {
      throw new RangeError(`fwt_gem: baseline[${i}] = ${v} is outside the 0–100 score scale`);
    }
  });
}

// ---------------------------------------------------------------------------
// Registry

const NAN_T1 = " NaN when T = 1.";

/**
 * Every metric, by formula id, in report order. Formula texts use 1-based
 * notation: R[t,j] = score on task j after training through task t, tasks 1..T.
 *
 * @example
 * ```ts
 * import { CL_METRICS } from "./cl_metrics.ts";
 * const bwt = CL_METRICS.find((m) => m.name === "bwt_gem")!;
 * bwt.compute([[80, NaN], [70, 90]]); // -10
 * ```
 */
export const CL_METRICS: readonly Readonly<ClMetric>[] = Object.freeze(([
  {
    name: "acc_final",
    formula: "ACC = (1/T) Σ_{j=1..T} R[T,j]",
    higherIsBetter: true,
    requires: "lower",
    minTasks: 1,
    compute: accFinal,
  },
  {
    name: "acc_avg_incremental",
    formula: "Ā = (1/T) Σ_{t=1..T} A_t, A_t = (1/t) Σ_{i=1..t} R[t,i]",
    higherIsBetter: true,
    requires: "lower",
    minTasks: 1,
    compute: accAvgIncremental,
  },
  {
    name: "op_trace",
    formula: "OP_T = (1/T) Σ_{i=1..T} R[T,i] (TRACE; equals ACC)",
    higherIsBetter: true,
    requires: "lower",
    minTasks: 1,
    compute: opTrace,
  },
  {
    name: "all_average_treelora",
    formula:
      "AllAvg = (2/(T(T+1))) Σ_{t=1..T} Σ_{i=1..t} R[t,i] (mean of the lower triangle incl. " +
      "diagonal; TreeLoRA 'All Average')",
    higherIsBetter: true,
    requires: "lower",
    minTasks: 1,
    compute: allAverageTreelora,
  },
  {
    name: "learning_acc",
    formula: "LA = (1/T) Σ_{i=1..T} R[i,i]",
    higherIsBetter: true,
    requires: "lower",
    minTasks: 1,
    compute: learningAcc,
  },
  {
    name: "forgetting_max",
    formula:
      "F = (1/(T−1)) Σ_{j=1..T−1} f_j, f_j = max_{l=j..T−1} R[l,j] − R[T,j] (Chaudhry 2018; " +
      "max over rows before the last, from the row that trained j; f_j not clipped)." + NAN_T1,
    higherIsBetter: false,
    requires: "lower",
    minTasks: 2,
    compute: forgettingMax,
  },
  {
    name: "forgetting_first_last",
    formula: "F_fl = (1/(T−1)) Σ_{j=1..T−1} (R[j,j] − R[T,j]) (Avalanche; = −BWT_gem)." + NAN_T1,
    higherIsBetter: false,
    requires: "lower",
    minTasks: 2,
    compute: forgettingFirstLast,
  },
  {
    name: "bwt_gem",
    formula: "BWT = (1/(T−1)) Σ_{i=1..T−1} (R[T,i] − R[i,i])." + NAN_T1,
    higherIsBetter: true,
    requires: "lower",
    minTasks: 2,
    compute: bwtGem,
  },
  {
    name: "bwt_trace",
    formula: "BWT_T = (1/T) Σ_{i=1..T} (R[T,i] − R[i,i]) = BWT_gem·(T−1)/T." + NAN_T1,
    higherIsBetter: true,
    requires: "lower",
    minTasks: 2,
    compute: bwtTrace,
  },
  {
    name: "bwt_treelora_code",
    formula: "BWT_code = (1/T) Σ_{i=1..T} min(R[T,i] − R[i,i], 0) (TreeLoRA code; ≤ 0)." + NAN_T1,
    higherIsBetter: true,
    requires: "lower",
    minTasks: 2,
    compute: bwtTreeloraCode,
  },
  {
    name: "fwt_gem",
    formula: "FWT = (1/(T−1)) Σ_{i=2..T} (R[i−1,i] − b_i), b_i = score on task i at " +
      "initialisation. NaN when T = 1 or R[i−1,i] or b is missing.",
    higherIsBetter: true,
    requires: "upper",
    minTasks: 2,
    compute: fwtGem,
  },
] satisfies ClMetric[]).map((m) => Object.freeze(m)));

/**
 * Compute every metric of {@link CL_METRICS} on R, in table order.
 *
 * Validates R once (shape, range, lower triangle) and throws on invalid input.
 * Metrics undefined for this R (T = 1, or FWT without upper triangle or
 * baseline) have value `NaN`.
 *
 * @example
 * ```ts
 * import { computeMetrics } from "./cl_metrics.ts";
 * const rows = computeMetrics([[80, NaN], [70, 90]]);
 * rows.find((r) => r.metric === "acc_final")?.value; // 80
 * ```
 */
export function computeMetrics(R: AccuracyMatrix, options: MetricOptions = {}): MetricRow[] {
  validateAccuracyMatrix(R, { requires: "lower", name: "computeMetrics" });
  return CL_METRICS.map((m) => ({
    metric: m.name,
    value: m.compute(R, options),
    formula: m.formula,
  }));
}
