/**
 * Bootstrap intervals of an LM run, from the predictions it stored: every
 * round's `predictions/<method>/<run>/round-NN.jsonl` holds one line per test
 * example with its score, so the report can resample test examples without
 * retraining (lib/metrics/bootstrap.ts says how). For each method the
 * intervals are those of the mean over its runs (seeds × orders); each run's
 * own OP and BWT intervals are listed too. Written to `intervals.csv`.
 *
 * @module
 */

import { join } from "@std/path";
import { exists } from "../io.ts";
import {
  type BootstrapCell,
  type BootstrapIntervals,
  bootstrapIntervals,
  type Interval,
} from "../metrics/bootstrap.ts";
import { shardDirs } from "./shards.ts";
import type { Row } from "./tables.ts";

/** Replicates, coverage and seed of every interval the report writes. */
export const REPORT_BOOTSTRAP = Object.freeze({ replicates: 1000, level: 0.95, seed: 0 });

/** How the intervals were made, as stated in intervals.csv and REPORT.md. */
export const INTERVAL_FORMULA = "95 % percentile bootstrap over test examples (1000 replicates, " +
  "seed 0): each replicate redraws every task's test examples with replacement, the same draw in " +
  "every round, seed and order (so R[T,i] − R[i,i] stays paired), and recomputes the statistic " +
  "on the mean over the method's runs; type-7 quantiles at 2.5 % and 97.5 %";

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

/**
 * The predictions folder of a run cell, as the run writer lays it out:
 * `predictions/<method>/seed-<s>[-order-<o>]` (names lower-cased, non-alphanumerics as `-`).
 *
 * @example
 * ```ts
 * import { predictionsFolder } from "./intervals.ts";
 * predictionsFolder({ method: "TreeLoRA", seed: 0, order: "olora-1" });
 * // "predictions/treelora/seed-0-order-olora-1"
 * ```
 */
export function predictionsFolder(key: { method: string; seed: number; order?: unknown }): string {
  const run = key.order === undefined || key.order === null || key.order === ""
    ? `seed-${key.seed}`
    : `seed-${key.seed}-order-${slug(String(key.order))}`;
  return join("predictions", slug(key.method), run);
}

/**
 * The predictions file of a round inside a cell's folder: `round-NN.jsonl` (as the run writer
 * names them).
 *
 * @example
 * ```ts
 * import { roundFile } from "./intervals.ts";
 * roundFile(3); // "round-03.jsonl"
 * ```
 */
export function roundFile(round: number): string {
  return `round-${String(round).padStart(2, "0")}.jsonl`;
}

/**
 * Where a run cell's predictions are: `<runDir>/<predictionsFolder>`, or, in a sweep merged from
 * shards, the same folder inside the one `shard-i-of-n/` that ran the cell; null when none has it.
 *
 * @example
 * ```ts ignore
 * const dir = await locatePredictions("results/trace/olora-orders-1-3", { method: "gem", seed: 0, order: "olora-1" });
 * ```
 */
export async function locatePredictions(
  runDir: string,
  key: { method: string; seed: number; order?: unknown },
): Promise<string | null> {
  const folder = predictionsFolder(key);
  if (await exists(join(runDir, folder))) return join(runDir, folder);
  for (const shard of await shardDirs(runDir)) {
    if (await exists(join(shard.path, folder))) return join(shard.path, folder);
  }
  return null;
}

/** One line of a round's predictions file, as the report reads it. */
export interface PredictionRecord {
  /** Task name. */
  task: string;
  /** Reference answer. */
  reference: string;
  /** The example's score (0–100). */
  score: number;
}

/**
 * The records of a round's predictions file (`round-NN.jsonl`, one JSON object per line): each
 * must have a string `task` and `reference` and a `score` in [0, 100]; anything else is an error
 * naming the file and line.
 *
 * @example
 * ```ts ignore
 * const recs = await readPredictions("results/trace/default/predictions/seqlora/seed-0/round-01.jsonl");
 * ```
 */
export async function readPredictions(path: string): Promise<PredictionRecord[]> {
  const out: PredictionRecord[] = [];
  (await Deno.readTextFile(path)).split("\n").forEach((line, k) => {
    if (line.trim() === "") return;
    let rec: { task?: unknown; reference?: unknown; score?: unknown };
    try {
      rec = JSON.parse(line);
    } catch {
      throw new Error(
        `${path}: line ${k + 1} is not JSON; expected {"task", "reference", "score", …}`,
      );
    }
    if (
      typeof rec.task !== "string" || typeof rec.reference !== "string" ||
      typeof rec.score !== "number" || !(rec.score >= 0 && rec.score <= 100)
    ) {
      throw new Error(
        `${path}: line ${k + 1} needs a string "task" and "reference" and a "score" in [0, 100]`,
      );
    }
    out.push({ task: rec.task, reference: rec.reference, score: rec.score });
  });
  return out;
}

async function readRound(path: string, names: string[], round: number): Promise<number[][]> {
  const byTask = new Map<string, number[]>();
  for (const rec of await readPredictions(path)) {
    if (!byTask.has(rec.task)) byTask.set(rec.task, []);
    byTask.get(rec.task)!.push(rec.score);
  }
  return names.slice(0, round).map((name) => {
    const scores = byTask.get(name);
    if (!scores) throw new Error(`${path}: no predictions of task ${name}`);
    return scores;
  });
}

/** What {@link runIntervals} found. */
export interface RunIntervals {
  /** Per method: the intervals of the mean over its runs. */
  byMethod: Map<string, BootstrapIntervals>;
  /** Rows of intervals.csv. */
  rows: Row[];
  /** Methods left out, with why (missing or incomplete predictions). */
  skipped: string[];
}

function fmt(x: number): number {
  return Math.round(x * 100) / 100;
}

function intervalRow(base: Row, statistic: string, i: Interval): Row {
  return { ...base, statistic, value: fmt(i.value), low: fmt(i.low), high: fmt(i.high) };
}

/**
 * The bootstrap intervals of an LM run folder from its matrix rows and stored predictions.
 *
 * @example
 * ```ts ignore
 * import { runIntervals } from "./intervals.ts";
 * const r = await runIntervals("results/trace/default", matrixRows, { numTasks: 8 });
 * r.byMethod.get("seqlora")?.op; // { value, low, high }
 * ```
 */
export async function runIntervals(
  runDir: string,
  matrix: readonly Row[],
  options: { numTasks: number },
): Promise<RunIntervals> {
  const cellsByMethod = new Map<string, { key: Row; cell: BootstrapCell }[]>();
  const skipped: string[] = [];
  const bad = new Set<string>();
  const keys = new Map<string, Row[]>();
  for (const r of matrix) {
    const k = [r.method, r.seed, r.order].map(String).join("\u0000");
    if (!keys.has(k)) keys.set(k, []);
    keys.get(k)!.push(r);
  }
  for (const rows of keys.values()) {
    const method = String(rows[0].method);
    if (bad.has(method)) continue;
    const names: string[] = [];
    for (const r of rows) names[Number(r.task) - 1] = String(r.task_name);
    const done = Math.max(...rows.map((r) => Number(r.trained_through)));
    const key: Row = { method, seed: Number(rows[0].seed), order: rows[0].order };
    const cellKey = { method, seed: Number(rows[0].seed), order: rows[0].order };
    const folder = await locatePredictions(runDir, cellKey) ??
      join(runDir, predictionsFolder(cellKey));
    if (done < options.numTasks || names.length < options.numTasks) {
      skipped.push(`${method}: a run is incomplete (${done}/${options.numTasks} tasks)`);
      bad.add(method);
      continue;
    }
    const rounds: number[][][] = [];
    for (let t = 1; t <= done; t++) {
      const path = join(folder, roundFile(t));
      if (!(await exists(path))) {
        skipped.push(`${method}: no ${path}`);
        bad.add(method);
        break;
      }
      rounds.push(await readRound(path, names, t));
    }
    if (bad.has(method)) continue;
    if (!cellsByMethod.has(method)) cellsByMethod.set(method, []);
    cellsByMethod.get(method)!.push({ key, cell: { tasks: names, rounds } });
  }
  const byMethod = new Map<string, BootstrapIntervals>();
  const rows: Row[] = [];
  for (const [method, cells] of cellsByMethod) {
    if (bad.has(method)) continue;
    const pooled = bootstrapIntervals(cells.map((c) => c.cell), REPORT_BOOTSTRAP);
    byMethod.set(method, pooled);
    const base: Row = { method, scope: `mean of ${cells.length} run(s)`, seed: "", order: "" };
    rows.push(intervalRow(base, "op_trace", pooled.op));
    rows.push(intervalRow(base, "bwt_trace", pooled.bwt));
    for (const f of pooled.finalScores) rows.push(intervalRow(base, `final:${f.task}`, f.interval));
    if (cells.length > 1) {
      for (const c of cells) {
        const one = bootstrapIntervals([c.cell], REPORT_BOOTSTRAP);
        const b: Row = { method, scope: "one run", seed: c.key.seed, order: c.key.order ?? "" };
        rows.push(intervalRow(b, "op_trace", one.op));
        rows.push(intervalRow(b, "bwt_trace", one.bwt));
      }
    }
  }
  for (const r of rows) r.formula = INTERVAL_FORMULA;
  return { byMethod, rows, skipped };
}

/**
 * An interval as the summary table prints it: `[low, high]` with two decimals, or `n/a`.
 *
 * @example
 * ```ts
 * import { formatInterval } from "./intervals.ts";
 * formatInterval({ value: 50, low: 40.123, high: 59.9 }); // "[40.12, 59.90]"
 * ```
 */
export function formatInterval(i: Interval | undefined): string {
  if (!i || !Number.isFinite(i.low) || !Number.isFinite(i.high)) return "n/a";
  return `[${i.low.toFixed(2)}, ${i.high.toFixed(2)}]`;
}
