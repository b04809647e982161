/**
 * TRACE's aggregate scores under the names TRACE and TreeLoRA use, as thin
 * wrappers over {@link ./cl_metrics.ts} (no formula is duplicated here).
 *
 * `R[i][j]` (0-based) is the score (0–100) on task j after training through
 * task i — rows are training stages. TreeLoRA's `collect_results` stores the
 * transpose; transpose before calling.
 *
 * | name       | formula (1-based)                               | cl_metrics id        |
 * |------------|-------------------------------------------------|----------------------|
 * | `op`       | (1/T) Σ_i R[T,i] (mean of the last row)         | `op_trace`           |
 * | `bwtPaper` | (1/T) Σ_i (R[T,i] − R[i,i])                     | `bwt_trace`          |
 * | `bwtCode`  | (1/T) Σ_i min(R[T,i] − R[i,i], 0)               | `bwt_treelora_code`  |
 *
 * The paper tables print BWT as a positive "forgetting" magnitude; these
 * functions keep the sign (forgetting is negative).
 *
 * @module
 */

import { type AccuracyMatrix, bwtTrace, bwtTreeloraCode, opTrace } from "./cl_metrics.ts";

/**
 * Overall performance OP: mean of the final row (the "Last Average").
 *
 * @example
 * ```ts
 * import { op } from "./trace_aggregate.ts";
 * op([[60, NaN], [50, 70]]); // 60
 * ```
 */
export function op(R: AccuracyMatrix): number {
  return opTrace(R);
}

/**
 * BWT as in the TRACE/TreeLoRA papers: (1/T) Σ_i (R[T,i] − R[i,i]); `NaN` for T = 1.
 *
 * @example
 * ```ts
 * import { bwtPaper } from "./trace_aggregate.ts";
 * bwtPaper([[60, NaN], [50, 70]]); // (−10 + 0) / 2 = −5
 * ```
 */
export function bwtPaper(R: AccuracyMatrix): number {
  return bwtTrace(R);
}

/**
 * BWT as TreeLoRA's `collect_results` computes it: (1/T) Σ_i min(R[T,i] − R[i,i], 0)
 * (gains are clipped to 0); `NaN` for T = 1.
 *
 * @example
 * ```ts
 * import { bwtCode } from "./trace_aggregate.ts";
 * bwtCode([[60, NaN, NaN], [50, 70, NaN], [80, 40, 90]]); // (0 − 30 + 0) / 3 = −10
 * ```
 */
export function bwtCode(R: AccuracyMatrix): number {
  return bwtTreeloraCode(R);
}

/** The three TRACE aggregates of one accuracy matrix. */
export interface TraceAggregates {
  /** {@link op}. */
  op: number;
  /** {@link bwtPaper}. */
  bwtPaper: number;
  /** {@link bwtCode}. */
  bwtCode: number;
}

/**
 * {@link op}, {@link bwtPaper} and {@link bwtCode} together.
 *
 * @example
 * ```ts
 * import { traceAggregates } from "./trace_aggregate.ts";
 * traceAggregates([[60, NaN], [50, 70]]); // { op: 60, bwtPaper: -5, bwtCode: -5 }
 * ```
 */
export function traceAggregates(R: AccuracyMatrix): TraceAggregates {
  return { op: op(R), bwtPaper: bwtPaper(R), bwtCode: bwtCode(R) };
}
