/**
 * Continual-learning metrics: named formulas over the accuracy matrix R.
 *
 * @example
 * ```ts
 * import { computeMetrics } from "./mod.ts";
 * const rows = computeMetrics([[80, NaN], [70, 90]]);
 * ```
 *
 * @module
 */

export * from "./cl_metrics.ts";
