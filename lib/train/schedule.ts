/**
 * Epoch schedules: one number for every task, or a list with one entry per task
 * (the paper's per-task budgets, e.g. 5,3,7,5,3,5,5,7 on TRACE).
 *
 * @module
 */

/** Epochs per task: one number for all tasks, or one per task. */
export type EpochSchedule = number | number[];

/**
 * The epochs of task `task` (0-based) under `epochs`.
 *
 * @example
 * ```ts
 * import { epochsFor } from "./schedule.ts";
 * epochsFor([2, 1, 3], 2); // 3
 * epochsFor(4, 7); // 4
 * ```
 */
export function epochsFor(epochs: number | readonly number[], task: number): number {
  if (typeof epochs === "number") return epochs;
  const e = epochs[task];
  if (e === undefined) {
    throw new Error(`epochs list has ${epochs.length} entries; task ${task + 1} has none`);
  }
  return e;
}
