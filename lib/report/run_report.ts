/**
 * Turn one run folder into its tables, plots and REPORT.md, from the files on
 * disk only (never retrains). The experiment calls it when a run ends;
 * `deno task report` calls it for every run folder under `results/`.
 *
 * Writes into the run folder:
 * - `metrics.csv`: method, seed, metric, value, formula — every named metric of
 *   the CIL accuracy matrix (lib/metrics/cl_metrics.ts);
 * - `summary.csv` / `summary.md`: one row per method, mean ± std over its runs (seeds × orders);
 * - `plots/*.vl.json|svg|png`: average accuracy after each task, forgetting
 *   after each task, training time per task by component, the accuracy matrix
 *   of each method, accuracy against throughput, loss terms over steps;
 * - `REPORT.md`: links everything and states how each number was made.
 *
 * @module
 */

import { join } from "@std/path";
import { exists, readJson, writeFileAtomic } from "../io.ts";
import {
  accuracyAfterEachTask,
  CL_METRICS,
  computeMetrics,
  forgettingAfterEachTask,
} from "../metrics/cl_metrics.ts";
import {
  accuracyCurveSpec,
  accuracyHeatmapSpec,
  accuracyVsThroughputSpec,
  forgettingCurveSpec,
  learningCurveSpec,
  lossCurveSpec,
  methodTimeSpec,
  trainingTimeSpec,
} from "./plots.ts";
import {
  learningCurveRows,
  type MethodStats,
  paperClaimCheck,
  table1Orderings,
  taskIdentityTable,
} from "./paper_check.ts";
import { methodStyles } from "./method_style.ts";
import { formatInterval, INTERVAL_FORMULA, runIntervals } from "./intervals.ts";
import { oloraTable10Section } from "./olora_table.ts";
import { taskTable } from "./task_table.ts";
import type { Staleness } from "./staleness.ts";
import { writePlot } from "./render.ts";
import { formatMeanStd, readCsvRows, type Row, summariseOverSeeds, writeTable } from "./tables.ts";
import type { PlotSpec } from "./render.ts";

/** The metrics shown in the summary table of the LM (TRACE) track, in order. */
export const TRACE_SUMMARY_METRICS = [
  "op_trace",
  "bwt_trace",
  "bwt_treelora_code",
  "bwt_gem",
  "forgetting_max",
  "learning_acc",
  "all_average_treelora",
];

/** The metrics shown in the summary table, in order. */
export const SUMMARY_METRICS = [
  "acc_final",
  "acc_avg_incremental",
  "forgetting_max",
  "bwt_gem",
  "bwt_trace",
  "bwt_treelora_code",
  "learning_acc",
];

/** What {@link writeRunReport} wrote. */
export interface RunReport {
  /** Files written (paths). */
  files: string[];
  /** Problems worth telling the user (missing files, incomplete run, no font for PNG). */
  warnings: string[];
  /** Summary rows (one per method). */
  summary: Row[];
}

/** Build the T×T accuracy matrix of one method and seed from matrix.csv rows (NaN where not evaluated). */
export function matrixFromRows(rows: Row[], numTasks: number, column = "acc_cil"): number[][] {
  const R = Array.from({ length: numTasks }, () => new Array<number>(numTasks).fill(NaN));
  for (const r of rows) {
    const i = Number(r.trained_through) - 1;
    const j = Number(r.task) - 1;
    if (i < 0 || j < 0 || i >= numTasks || j >= numTasks) {
      throw new Error(
        `matrix row out of range: trained_through ${r.trained_through}, task ${r.task}`,
      );
    }
    R[i][j] = Number(r[column]);
  }
  return R;
}

/** The columns that identify one run (method × seed × order). */
const RUN_KEYS = ["method", "seed", "order"];

/** True when `r` belongs to the same seed and order as `first` (the run the single-run plots show). */
function isFirstRun(r: Row, first: Row): boolean {
  return Number(r.seed) === Number(first.seed) && String(r.order) === String(first.order);
}

function groupBy(rows: Row[], keys: string[]): Map<string, Row[]> {
  const out = new Map<string, Row[]>();
  for (const r of rows) {
    const k = keys.map((key) => String(r[key])).join("\u0000");
    if (!out.has(k)) out.set(k, []);
    out.get(k)!.push(r);
  }
  return out;
}

/**
 * Render the report of the run folder `runDir`.
 *
 * @example
 * ```ts ignore
 * const report = await writeRunReport("results/split-cifar/default", { png: "auto" });
 * ```
 */
export async function writeRunReport(
  runDir: string,
  options: { png?: boolean | "auto"; referenceMethod?: string; staleness?: Staleness } = {},
): Promise<RunReport> {
  const warnings: string[] = [];
  if (options.staleness?.status === "stale") {
    warnings.push(`**stale run**: ${options.staleness.reason}`);
  }
  const files: string[] = [];
  // deno-lint-ignore no-explicit-any
  const config = await readJson<any>(join(runDir, "config.json"));
  const matrixPath = join(runDir, "matrix.csv");
  if (!(await exists(matrixPath))) {
    throw new Error(`${runDir}: no matrix.csv (no task finished yet), nothing to report`);
  }
  const matrix = await readCsvRows(matrixPath);
  const timings = await readCsvRows(join(runDir, "timings.csv"));
  const components = (await exists(join(runDir, "components.csv")))
    ? await readCsvRows(join(runDir, "components.csv"))
    : [];
  const losses = (await exists(join(runDir, "losses.csv")))
    ? await readCsvRows(join(runDir, "losses.csv"))
    : [];
  const optional = async (name: string) =>
    (await exists(join(runDir, name))) ? await readCsvRows(join(runDir, name)) : [];
  const tiiRows = await optional("task_identity.csv");
  const learningRows = await optional("learning_curve.csv");
  const status = (await exists(join(runDir, "status.json")))
    ? await readJson<{ complete: boolean; warnings?: unknown }>(join(runDir, "status.json"))
    : null;
  if (status && !status.complete) {
    warnings.push("the run is incomplete: tables cover the finished tasks only");
  }
  if (status && Array.isArray(status.warnings)) {
    for (const w of status.warnings) warnings.push(`**training**: ${String(w)}`);
  }
  const numTasks = Number(config.data?.numTasks ?? Math.max(...matrix.map((r) => Number(r.task))));
  // The LM track stores a `score` per task (its own metric) and counts examples, not images.
  const lm = config.track === "lm";
  const column = lm ? "score" : "acc_cil";
  const unit = lm ? "examples" : "images";
  const summaryMetrics = lm ? TRACE_SUMMARY_METRICS : SUMMARY_METRICS;
  const methodOrder: string[] = (config.methods ?? []).map((m: Row) => String(m.label));
  for (const r of matrix) {
    if (!methodOrder.includes(String(r.method))) methodOrder.push(String(r.method));
  }

  // Metrics per method and seed, on the tasks finished so far.
  const metricRows: Row[] = [];
  const curveRows: Row[] = [];
  const forgettingRows: Row[] = [];
  const heatmaps: { method: string; R: number[][] }[] = [];
  for (const [, rows] of groupBy(matrix, RUN_KEYS)) {
    const method = String(rows[0].method);
    const seed = Number(rows[0].seed);
    const order = rows[0].order;
    const tag: Row = order === undefined ? { method, seed } : { method, seed, order };
    const done = Math.max(...rows.map((r) => Number(r.trained_through)));
    const R = matrixFromRows(rows, numTasks, column).slice(0, done).map((row) =>
      row.slice(0, done)
    );
    for (const m of computeMetrics(R)) metricRows.push({ ...tag, tasks: done, ...m });
    accuracyAfterEachTask(R).forEach((acc, t) => curveRows.push({ ...tag, task: t + 1, acc }));
    forgettingAfterEachTask(R).forEach((f, t) =>
      forgettingRows.push({ ...tag, task: t + 1, forgetting: f })
    );
    if (isFirstRun(rows[0], matrix[0])) heatmaps.push({ method, R });
  }
  files.push(...(await writeTable(join(runDir, "metrics"), metricRows, { formats: ["csv"] })));

  // Summary: one row per method, mean ± std over its runs (seeds × orders).
  const totals: Row[] = [];
  for (const [, rows] of groupBy(timings, RUN_KEYS)) {
    const train = rows.reduce((a, r) => a + Number(r.train_seconds), 0);
    const images = rows.reduce((a, r) => a + Number(r[`train_${unit}`]), 0);
    totals.push({
      method: rows[0].method,
      seed: rows[0].seed,
      order: rows[0].order,
      train_seconds: train,
      eval_seconds: rows.reduce((a, r) => a + Number(r.eval_seconds), 0),
      [`${unit}_per_second`]: images / train,
    });
  }
  const wide: Row[] = [];
  for (const [, rows] of groupBy(metricRows, RUN_KEYS)) {
    const w: Row = {
      method: rows[0].method,
      seed: rows[0].seed,
      order: rows[0].order,
      tasks: rows[0].tasks,
    };
    for (const r of rows) w[String(r.metric)] = r.value;
    const t = totals.find((x) => x.method === w.method && x.seed === w.seed && x.order === w.order);
    Object.assign(w, {
      train_seconds: t?.train_seconds,
      [`${unit}_per_second`]: t?.[`${unit}_per_second`],
    });
    wide.push(w);
  }
  const values = [...summaryMetrics, "train_seconds", `${unit}_per_second`];
  const stats = summariseOverSeeds(wide, { by: ["method"], values });
  const reference = options.referenceMethod ?? methodOrder[0];
  const refTime = Number(stats.find((s) => s.method === reference)?.train_seconds_mean);
  const summary: Row[] = methodOrder
    .map((method) => stats.find((s) => s.method === method))
    .filter((s): s is Row => s !== undefined)
    .map((s) => {
      const row: Row = {
        method: s.method,
        runs: s.n,
        tasks: wide.find((w) => w.method === s.method)?.tasks,
      };
      for (const v of values) row[v] = formatMeanStd(Number(s[`${v}_mean`]), Number(s[`${v}_std`]));
      row[`time_ratio_vs_${reference}`] = (Number(s.train_seconds_mean) / refTime).toFixed(2);
      return row;
    });
  // LM runs: 95 % bootstrap intervals over test examples (from the stored predictions), beside
  // OP and BWT in the summary and in full (per task, per run) in intervals.csv.
  let intervalNote = "";
  if (lm) {
    const iv = await runIntervals(runDir, matrix, { numTasks });
    if (iv.rows.length > 0) {
      files.push(...(await writeTable(join(runDir, "intervals"), iv.rows, { formats: ["csv"] })));
    }
    for (const why of iv.skipped) warnings.push(`no bootstrap interval for ${why}`);
    summary.forEach((row, k) => {
      const b = iv.byMethod.get(String(row.method));
      const out: Row = {};
      for (const [key, value] of Object.entries(row)) {
        out[key] = value;
        if (key === "op_trace") out.op_trace_95ci = formatInterval(b?.op);
        if (key === "bwt_trace") out.bwt_trace_95ci = formatInterval(b?.bwt);
      }
      summary[k] = out;
    });
    intervalNote = `\`op_trace_95ci\` and \`bwt_trace_95ci\` are ${INTERVAL_FORMULA}; ` +
      "they cover test-sampling variation of the mean over the method's runs, not seed-to-seed " +
      "variation (that is the ± std). Per task and per run: [intervals.csv](intervals.csv).";
  }
  files.push(...(await writeTable(join(runDir, "summary"), summary, { formats: ["csv", "md"] })));

  // Plots: every method keeps its family colour and variant dash/shape (method_style.ts);
  // curves and points are means over the runs (seeds × orders) with ±std bands and bars.
  const styles = methodStyles(
    (config.methods ?? []).map((m: Row) => ({ label: String(m.label), name: String(m.name) })),
  );
  const meanStd = (rows: Row[], by: string[], field: string) =>
    summariseOverSeeds(rows.filter((r) => Number.isFinite(Number(r[field]))), {
      by,
      values: [field],
    }).map((s) => {
      const mean = Number(s[`${field}_mean`]);
      const std = Number.isFinite(Number(s[`${field}_std`])) ? Number(s[`${field}_std`]) : 0;
      return { ...s, [field]: mean, low: mean - std, high: mean + std };
    });
  const plotsDir = join(runDir, "plots");
  const png = options.png ?? "auto";
  const fonts = new Set<string>();
  const plot = async (name: string, spec: PlotSpec) => {
    const r = await writePlot(plotsDir, name, spec, { png });
    files.push(...r.files);
    if (r.font) fonts.add(r.font);
    return r;
  };
  // Heatmaps and loss curves show the first seed and order of the run.
  const first = matrix[0];
  const runs = new Set(matrix.map((r) => `${r.seed}\u0000${r.order ?? ""}`)).size;
  await plot(
    "accuracy_curve",
    accuracyCurveSpec(
      meanStd(curveRows, ["method", "task"], "acc") as never,
      lm
        ? {
          title: "Overall performance after each task",
          yTitle: "OP_t (mean score, 0–100)",
          styles,
        }
        : { styles },
    ),
  );
  await plot(
    "forgetting_curve",
    forgettingCurveSpec(meanStd(forgettingRows, ["method", "task"], "forgetting") as never, {
      styles,
    }),
  );
  // Fig. 4b: each component's seconds summed over tasks, averaged over the runs.
  const timeRows = summariseOverSeeds(
    [...groupBy(components, [...RUN_KEYS, "component"]).values()].map((rows) => ({
      method: rows[0].method,
      component: rows[0].component,
      seconds: rows.reduce((a, r) => a + Number(r.seconds), 0),
    })),
    { by: ["method", "component"], values: ["seconds"] },
  ).map((s) => ({ method: s.method, task: 0, component: s.component, seconds: s.seconds_mean }));
  await plot(
    "training_time",
    trainingTimeSpec(timeRows as never, {
      styles,
      ...(runs > 1
        ? { title: `Training time per method by component (mean of ${runs} runs)` }
        : {}),
    }),
  );
  const methodStats: MethodStats[] = methodOrder
    .map((method) => stats.find((s) => s.method === method))
    .filter((s): s is Row => s !== undefined)
    .map((s) => ({
      method: String(s.method),
      runs: Number(s.n),
      acc: Number(s[`${summaryMetrics[0]}_mean`]),
      accStd: Number.isFinite(Number(s[`${summaryMetrics[0]}_std`]))
        ? Number(s[`${summaryMetrics[0]}_std`])
        : 0,
      seconds: Number(s.train_seconds_mean),
      secondsStd: Number.isFinite(Number(s.train_seconds_std)) ? Number(s.train_seconds_std) : 0,
    }));
  await plot(
    "training_time_per_method",
    methodTimeSpec(
      methodStats.map((m) => ({ method: m.method, seconds: m.seconds, std: m.secondsStd })),
      { styles },
    ),
  );
  const curve = learningCurveRows(learningRows);
  if (curve.length > 0) await plot("learning_curve", learningCurveSpec(curve, { styles }));
  for (const h of heatmaps) {
    await plot(`accuracy_matrix_${slug(h.method)}`, accuracyHeatmapSpec(h.R, { method: h.method }));
  }
  const throughput = methodOrder
    .map((method) => stats.find((s) => s.method === method))
    .filter((s): s is Row => s !== undefined)
    .map((s) => ({
      method: String(s.method),
      acc: Number(s[`${summaryMetrics[0]}_mean`]),
      accStd: Number(s[`${summaryMetrics[0]}_std`]),
      imagesPerSecond: Number(s[`${unit}_per_second_mean`]),
      imagesPerSecondStd: Number(s[`${unit}_per_second_std`]),
    }));
  await plot(
    "accuracy_vs_throughput",
    accuracyVsThroughputSpec(
      throughput as never,
      lm
        ? {
          title: "OP vs training throughput",
          xTitle: "Training throughput (examples/s)",
          yTitle: "OP (score)",
          styles,
        }
        : { styles },
    ),
  );
  if (losses.length > 0) {
    await plot(
      "loss_terms",
      lossCurveSpec(cumulativeSteps(losses.filter((r) => isFirstRun(r, first))) as never, {
        styles,
      }),
    );
  }
  if (png !== false && fonts.size === 0) {
    warnings.push("no font file found: PNG copies skipped, SVG only");
  }

  const perTask = lm ? await taskTable(runDir, matrix, methodOrder) : [];
  if (perTask.length > 0) {
    files.push(...(await writeTable(join(runDir, "tasks"), perTask, { formats: ["csv"] })));
  }
  const table10 = lm
    ? oloraTable10Section(wide, {
      nameOf: (label) =>
        String((config.methods ?? []).find((m: Row) => m.label === label)?.name ?? label),
      epochsOf: (label) => (config.methods ?? []).find((m: Row) => m.label === label)?.epochs,
      scale:
        `\`${config.model?.preset}\` decoder (${config.model?.decoder?.dim}-dim, ${config.model?.decoder?.layers} layers), tokenizer ${
          config.model?.tokenizerDetails?.description ?? config.model?.tokenizer
        }, LoRA ${JSON.stringify(config.model?.decoder?.lora)}; ${
          JSON.stringify(config.data?.sizes)
        } examples (train/test per task); epochs per task per method in the Methods list`,
    })
    : "";
  const table1 = lm ? [] : table1Orderings(methodStats);
  const paper = lm ? [] : paperClaimCheck(methodStats, {
    reference: "hide-lora",
    candidates: ["hide-treelora", "hide-treelora-reduced-epochs"],
    controls: { "hide-treelora-reduced-epochs": "hide-lora-reduced-epochs" },
  });
  const md = reportMarkdown({
    config,
    summary,
    paper,
    table1,
    tii: taskIdentityTable(tiiRows),
    learningCurve: curve.length > 0,
    hasLosses: losses.length > 0,
    metricRows,
    warnings,
    fonts: [...fonts],
    heatmaps,
    reference,
    intervalNote,
    table10,
    perTask,
  });
  const reportPath = join(runDir, "REPORT.md");
  await writeFileAtomic(reportPath, md);
  files.push(reportPath);
  return { files, warnings, summary };
}

/**
 * Loss rows of one run with `step` counted across the epochs of each task
 * (losses.csv restarts `step` every epoch), without the `total` term.
 */
function cumulativeSteps(losses: Row[]): Row[] {
  const out: Row[] = [];
  for (
    const [, rows] of groupBy(losses, ["method", "task"])
  ) {
    const perEpoch = new Map<number, number>();
    for (const r of rows) {
      const e = Number(r.epoch);
      perEpoch.set(e, Math.max(perEpoch.get(e) ?? 0, Number(r.step)));
    }
    const offsets = new Map<number, number>();
    let acc = 0;
    for (const e of [...perEpoch.keys()].sort((a, b) => a - b)) {
      offsets.set(e, acc);
      acc += perEpoch.get(e)!;
    }
    for (const r of rows) {
      if (r.term === "total") continue;
      out.push({ ...r, step: offsets.get(Number(r.epoch))! + Number(r.step) });
    }
  }
  return out;
}

// deno-lint-ignore no-explicit-any
function pretrainText(config: any): string {
  const p = config.backbone?.pretrain;
  if (!p) return "no pre-training record";
  const acc = p.report?.testAccuracy;
  const augment = p.augment
    ? `, random crop (padding ${p.augment.padding})${p.augment.flip ? " and horizontal flip" : ""}`
    : "";
  return `${p.steps} steps, batch ${p.batchSize}, lr ${p.lr}${augment}; held-out accuracy on the pre-training classes ${
    typeof acc === "number" ? acc.toFixed(2) + "%" : "unknown"
  }`;
}

/** The pre-training/stream class split and the linear probe, when the run has them. */
// deno-lint-ignore no-explicit-any
function splitAndProbeLines(config: any): string[] {
  const lines: string[] = [];
  const split = config.data?.pretrainSplit;
  if (split) {
    lines.push(
      `- Pre-training/stream split (seed ${split.seed}): ${split.pretrainClasses.length} classes ` +
        `reserved for pre-training the backbone, ${split.streamClasses.length} form the stream; ` +
        `${split.disjoint}${split.pretrainedOn ? `; ${split.pretrainedOn}` : ""}.`,
    );
  }
  const probe = config.backbone?.linearProbe;
  if (probe) {
    lines.push(
      `- Linear probe of the frozen backbone on the stream's ${probe.classes} classes: ` +
        `${Number(probe.testAccuracy).toFixed(2)} % test accuracy (chance ${
          (100 / probe.classes).toFixed(2)
        } %; ${probe.trainImages} train / ${probe.testImages} test images; ${probe.protocol}).`,
    );
  }
  return lines;
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

function paperSection(lines: string[]): string {
  if (lines.length === 0) return "";
  return `## The paper's ViT claim, checked on this run

TreeLoRA inside HiDe-LoRA reaching HiDe-LoRA's accuracy (within 1 point of acc_final) in at most half its
training time (spec §8.1: 88.54 vs 88.46 ACC, 214 vs 692 s). Computed from the summary above (means over runs).

${lines.join("\n")}

`;
}

function table1Section(lines: string[]): string {
  if (lines.length === 0) return "";
  return `## The paper's Table 1 orderings, checked on this run

Each pair of methods that the paper's Table 1 compares on Split CIFAR-100 and this run also ran
(TreeLoRA = \`hide-treelora\`, TreeLoRA inside HiDe-LoRA as in the paper): the paper's order of
ACC (final average accuracy) and TIME (training seconds), and this run's gap in acc_final and
train_seconds (means over runs; ± the sum of the two methods' stds over runs). **holds** /
**reversed**: the run's order agrees / disagrees with the paper's and the gap is larger than that
spread; "within spread" when it is not. A paper gap no larger than the paper's own two stds is a
tie. The paper's numbers are at full scale (ViT-B/16, 224×224, 20 epochs, 8 GPUs); only the
orderings are comparable, not the values.

${lines.join("\n")}

`;
}

function perTaskSection(rows: Row[]): string {
  if (rows.length === 0) return "";
  const cols = Object.keys(rows[0]);
  return `## Per task: learned at all?

Each task's score right after training it (\`learn\`, R[i,i]) and at the end (\`final\`, R[T,i]), mean
over each method's runs, beside the majority-label rate of its test set (the accuracy of always giving
the most frequent reference; label-scored tasks only). A learning score at or below that rate means the
task was not learned beyond its label prior. Also in [tasks.csv](tasks.csv); per-task 95 % intervals of
the final scores are in [intervals.csv](intervals.csv).

| ${cols.join(" | ")} |
| ${cols.map(() => "---").join(" | ")} |
${rows.map((r) => `| ${cols.map((c) => String(r[c] ?? "")).join(" | ")} |`).join("\n")}

`;
}

function tiiSection(rows: Row[]): string {
  if (rows.length === 0) return "";
  const cols = Object.keys(rows[0]);
  return `## Task-identity inference

Share of test images routed to their own task's adapter (%), mean ± std over runs, from
[task_identity.csv](task_identity.csv): \`tii_final\` after the last task over all tasks, \`tii_new\` on each
task t ≥ 2 right after training it (the diagonal), \`tii_old\` after the last task over the earlier tasks.

| ${cols.join(" | ")} |
| ${cols.map(() => "---").join(" | ")} |
${rows.map((r) => `| ${cols.map((c) => String(r[c] ?? "")).join(" | ")} |`).join("\n")}

`;
}

/** How an LM run's decoder was pre-trained, from config.json (older runs lack `corpus`). */
// deno-lint-ignore no-explicit-any
function lmPretrainText(config: any): string {
  const p = config.model?.pretrain;
  if (!p) return `loaded from ${JSON.stringify(config.model?.checkpoint ?? "a checkpoint")}`;
  const corpus = p.corpus;
  const what = corpus
    ? `${corpus.description}; overlap check: ${corpus.overlap?.overlapping} of ` +
      `${corpus.overlap?.checkedStreamExamples} stream examples found in the corpus (${corpus.overlap?.rule})`
    : "a generic synthetic corpus disjoint from the tasks";
  return `pre-trained by the harness (${p.steps} steps of ${p.batchSize} × ${p.seqLength} tokens) ` +
    `on ${what} (${JSON.stringify(p.report ?? {})})`;
}

function reportMarkdown(args: {
  // deno-lint-ignore no-explicit-any
  config: any;
  summary: Row[];
  metricRows: Row[];
  warnings: string[];
  fonts: string[];
  heatmaps: { method: string }[];
  reference: string;
  paper: string[];
  /** The Table 1 ordering lines (lib/report/paper_check.ts `table1Orderings`). */
  table1: string[];
  tii: Row[];
  learningCurve: boolean;
  hasLosses: boolean;
  intervalNote?: string;
  table10?: string;
  perTask?: Row[];
}): string {
  const { config } = args;
  const cols = args.summary.length > 0 ? Object.keys(args.summary[0]) : [];
  const table = [
    `| ${cols.join(" | ")} |`,
    `| ${cols.map(() => "---").join(" | ")} |`,
    ...args.summary.map((r) => `| ${cols.map((c) => String(r[c] ?? "")).join(" | ")} |`),
  ].join("\n");
  const names = args.config.track === "lm" ? TRACE_SUMMARY_METRICS : SUMMARY_METRICS;
  const formulas = CL_METRICS.filter((m) => names.includes(m.name))
    .map((m) => `- \`${m.name}\`: ${m.formula}`).join("\n");
  const methods = (config.methods ?? []).map((m: Row) =>
    `  - **${m.label}** (\`${m.name}\`): epochs per task ${JSON.stringify(m.epochs)}, options ${
      JSON.stringify(m.options)
    }`
  ).join("\n");
  const data = config.data ?? {};
  const standIn = data.source === "synthetic"
    ? "Data: **synthetic stand-in** for CIFAR-100 (the embedded generator; not real images)."
    : `Data: read from \`${data.dir}\` (CIFAR-100 binary layout; ${data.trainImages} train / ${data.testImages} ` +
      `test images${
        Array.isArray(data.classNames)
          ? `; classes ${data.classNames.slice(0, 5).join(", ")}, …`
          : ""
      }). The layout does not say which data set it is: a stand-in (e.g. Tiny-ImageNet in CIFAR layout) ` +
      "is named by its directory and class names.";
  const lm = config.track === "lm";
  const scoreNote = lm
    ? "Score columns are each task's own metric on a 0–100 scale (accuracy, letter accuracy, ROUGE-L, " +
      "edit similarity or SARI; see the `metric` column of matrix.csv), mean ± std over runs (seeds × orders; `runs` column; std blank " +
      "for one run). `op_trace` is OP; `bwt_trace` is the paper's BWT (signed; negative = forgetting), " +
      "`bwt_treelora_code` the released code's clipped variant." +
      (args.intervalNote ? ` ${args.intervalNote}` : "")
    : "Accuracy columns are class-incremental accuracy in % (no task id at test time), mean ± std over runs (seeds × orders; `runs` column)\n" +
      "(std is blank for one run).";
  const howMade = lm
    ? [
      `- Scenario: ${config.scenario}. ${config.protocol}.`,
      `- Data: ${data.description}. Tasks in order: ${JSON.stringify(data.tasks)} (metrics ${
        JSON.stringify(data.metrics)
      }); ${JSON.stringify(data.sizes)} examples (train/test per task).`,
      `- Model: \`${config.model?.preset}\` decoder, tokenizer ${config.model?.tokenizer}, ${config.model?.loraSites}; ` +
      `LoRA ${JSON.stringify(config.model?.decoder?.lora)}; ${
        lmPretrainText(config)
      }, then frozen.`,
      `- Decoding: ${JSON.stringify(config.decoding)}.`,
    ].join("\n")
    : [
      `- Scenario: ${config.scenario}. ${config.protocol}.`,
      `- ${standIn}`,
      `- Tasks: ${data.numTasks} × ${data.classesPerTask} classes; class order ${
        data.orderSeed === null ? "natural" : `drawn with order seed ${data.orderSeed}`
      }: ${JSON.stringify(data.classOrder)}.`,
      `- Backbone: \`${config.backbone?.preset}\`, ${config.backbone?.loraSites}; LoRA ${
        JSON.stringify(config.backbone?.vit?.lora)
      }; ${
        config.backbone?.checkpoint
          ? `loaded from the checkpoint ${
            JSON.stringify(config.backbone.checkpoint.dir ?? "a checkpoint")
          } (not pre-trained by the harness)`
          : `pre-trained by the harness on ${
            config.backbone?.pretrain?.data ?? "synthetic classes disjoint from the CL classes"
          } (${pretrainText(config)})`
      }, then frozen.`,
      ...splitAndProbeLines(config),
    ].join("\n");
  return `# ${config.experiment} — ${config.scenario}

${args.warnings.map((w) => `> **Note:** ${w}`).join("\n")}
${
    Array.isArray(config.notes)
      ? config.notes.map((n: unknown) => `> **Note (config.json \`notes\`):** ${String(n)}`).join(
        "\n",
      )
      : ""
  }

## Which method is best, at what cost

![average accuracy after each task (Fig. 4a)](plots/accuracy_curve.svg)
![final accuracy vs training throughput (Fig. 4c)](plots/accuracy_vs_throughput.svg)
![training time per method by component (Fig. 4b)](plots/training_time.svg)
${
    args.learningCurve
      ? "![accuracy on the new task while training it (Fig. 1)](plots/learning_curve.svg)\n\n" +
        "Fig. 1: accuracy on a fixed held-out subset of the task being trained (its first " +
        `${
          config.train?.curveImages ?? 100
        } test images; the method's forward with that task's index, argmax over ` +
        `its classes) every ${config.train?.curveEvery} steps, mean over tasks 2–${config.data?.numTasks} and runs ` +
        "(band: ± std over runs); raw points in [learning_curve.csv](learning_curve.csv).\n"
      : ""
  }
Curves and points are means over the runs (seeds × orders) with ± std bands and error bars; each
method keeps one look in every figure (colour by method family, dash and shape by variant).

## Results

${table}

${scoreNote} \`train_seconds\` is the total training wall-clock over all tasks;
\`time_ratio_vs_${args.reference}\` divides it by the same quantity of ${args.reference} in this run.
Every value per seed, with its formula, is in [metrics.csv](metrics.csv); the raw accuracy matrices are in
[matrix.csv](matrix.csv), per-task timings in [timings.csv](timings.csv) and
[components.csv](components.csv).

${paperSection(args.paper)}${table1Section(args.table1)}${args.table10 ?? ""}${
    perTaskSection(args.perTask ?? [])
  }${tiiSection(args.tii)}## More figures

![forgetting after each task](plots/forgetting_curve.svg)
![training time per method, mean ± std](plots/training_time_per_method.svg)
${
    args.heatmaps.map((h) =>
      `![accuracy matrix ${h.method}](plots/accuracy_matrix_${slug(h.method)}.svg)`
    ).join("\n")
  }
${args.hasLosses ? "![loss terms during training](plots/loss_terms.svg)\n" : ""}
Heatmaps and loss terms show the first run (seed and order) of each method.
${
    args.fonts.length > 0
      ? `PNG copies rendered with the font ${args.fonts.join(", ")}.`
      : "No PNG copies (no font file found)."
  }

## How these numbers were made

${howMade}
- Training: ${JSON.stringify(config.train)}.
- Seeds: ${JSON.stringify(config.seeds)}.
- Backend: ${config.backend?.name} (requested ${config.backend?.requested}), tfjs ${config.provenance?.tfjs},
  Deno ${config.provenance?.deno}, ${config.provenance?.platform}, ${config.provenance?.cpus} CPUs,
  commit ${config.provenance?.gitCommit ?? "unknown"}.
- Methods:
${methods}

### Metric formulas (R[i][j] = ${lm ? "score" : "accuracy"} on task j after training through task i)

${formulas}
`;
}
