/**
 * Per task of an LM run: whether the methods learned it at all. For each task,
 * the **learning score** (its score right after training it, R[i,i]) and the
 * **final score** (R[T,i]), mean over a method's runs, beside the
 * **majority-label rate** of its test set: the share of test examples whose
 * reference is the most frequent reference, × 100, i.e. the accuracy of always
 * answering the most frequent label. It is given for the accuracy-scored tasks
 * (`accuracy`, `letter_accuracy`) only; a learning score at or below it means
 * the task was not learned beyond its label prior. References come from the
 * stored predictions (`predictions/…/round-NN.jsonl`).
 *
 * @module
 */

import { join } from "@std/path";
import { exists } from "../io.ts";
import { locatePredictions, readPredictions, roundFile } from "./intervals.ts";
import type { Row } from "./tables.ts";

/**
 * The majority-label rate (0–100) of a list of references: the count of the most frequent
 * reference over the count of all.
 *
 * @example
 * ```ts
 * import { majorityRate } from "./task_table.ts";
 * majorityRate(["World", "Sports", "World", "Business"]); // 50
 * ```
 */
export function majorityRate(references: readonly string[]): number {
  if (references.length === 0) throw new RangeError("majorityRate: no references");
  const counts = new Map<string, number>();
  for (const r of references) counts.set(r, (counts.get(r) ?? 0) + 1);
  return (100 * Math.max(...counts.values())) / references.length;
}

const LABEL_METRICS = new Set(["accuracy", "letter_accuracy"]);

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * One row per task (in the first run's order): metric, test examples, majority-label rate, then
 * `<method> learn` and `<method> final` (means over the method's runs, 2 decimals).
 *
 * @example
 * ```ts ignore
 * const rows = await taskTable("results/trace/olora-orders-1-3", matrixRows, ["seqlora"]);
 * ```
 */
export async function taskTable(
  runDir: string,
  matrix: readonly Row[],
  methods: readonly string[],
): Promise<Row[]> {
  if (matrix.length === 0) return [];
  const first = matrix[0];
  const firstRun = matrix.filter((r) =>
    r.method === first.method && r.seed === first.seed && r.order === first.order
  );
  const names: string[] = [];
  const metricOf = new Map<string, string>();
  for (const r of firstRun) {
    names[Number(r.task) - 1] = String(r.task_name);
    metricOf.set(String(r.task_name), String(r.metric));
  }
  // References of each task: from the first run's last round that evaluated it.
  const references = new Map<string, string[]>();
  const last = Math.max(...firstRun.map((r) => Number(r.trained_through)));
  const folder = await locatePredictions(runDir, {
    method: String(first.method),
    seed: Number(first.seed),
    order: first.order,
  });
  const path = folder === null ? null : join(folder, roundFile(last));
  if (path !== null && (await exists(path))) {
    for (const rec of await readPredictions(path)) {
      if (!references.has(rec.task)) references.set(rec.task, []);
      references.get(rec.task)!.push(rec.reference);
    }
  }
  return names.filter((n) => n !== undefined).map((task) => {
    const refs = references.get(task) ?? [];
    const metric = metricOf.get(task)!;
    const row: Row = {
      task,
      metric,
      test_examples: refs.length || "",
      majority_rate: LABEL_METRICS.has(metric) && refs.length > 0
        ? majorityRate(refs).toFixed(2)
        : "n/a",
    };
    for (const method of methods) {
      const rows = matrix.filter((r) => r.method === method && r.task_name === task);
      const runs = new Map<string, Row[]>();
      for (const r of rows) {
        const k = `${r.seed}\u0000${r.order}`;
        if (!runs.has(k)) runs.set(k, []);
        runs.get(k)!.push(r);
      }
      const learn: number[] = [];
      const final: number[] = [];
      for (const rs of runs.values()) {
        // A task is first scored right after it was trained: the smallest trained_through.
        const trained = Math.min(...rs.map((r) => Number(r.trained_through)));
        const diag = rs.find((r) => Number(r.trained_through) === trained);
        const end = rs.reduce((
          a,
          r,
        ) => (Number(r.trained_through) > Number(a.trained_through) ? r : a));
        if (diag) learn.push(Number(diag.score));
        final.push(Number(end.score));
      }
      row[`${method} learn`] = learn.length > 0 ? mean(learn).toFixed(2) : "";
      row[`${method} final`] = final.length > 0 ? mean(final).toFixed(2) : "";
    }
    return row;
  });
}
