/**
 * Vega-Lite v6 spec builders for the report plots.
 *
 * Every builder returns a plain JSON object (a Vega-Lite `PlotSpec`) with
 * `$schema`, a title, axis titles with units, and the data inline in
 * `data.values`, so a `*.vl.json` file is self-contained and opens in the
 * Vega editor. Rows whose plotted value is not finite (`NaN`, e.g. forgetting
 * after task 1 or an unevaluated cell of R) are dropped from the data.
 * Task indices in rows are 1-based, as in the CSV files.
 *
 * Render with `renderSvg` / `writePlot` from `render.ts`.
 *
 * @module
 */

import { methodEncodings, type MethodStyles, methodStyles } from "./method_style.ts";
import type { PlotSpec } from "./render.ts";

/** The Vega-Lite schema the specs declare. */
export const VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Options common to the spec builders. */
export interface PlotOptions {
  /** Chart title; each builder has a default. */
  title?: string;
  /** Width of the plot area (of one facet cell for faceted plots), px. */
  width?: number;
  /** Height of the plot area (of one facet cell for faceted plots), px. */
  height?: number;
  /** Y-axis title; each builder has a default (e.g. the LM track says "score" for "accuracy"). */
  yTitle?: string;
  /** X-axis title; each builder has a default. */
  xTitle?: string;
  /**
   * The methods' fixed looks (colour by family, dash and shape by variant; method_style.ts);
   * absent = derived from the rows' method labels.
   */
  styles?: MethodStyles;
}

/** The styles of `options`, or those of the methods in `rows` (first appearance order). */
function stylesFor(rows: readonly { method: string }[], options: PlotOptions): MethodStyles {
  if (options.styles) {
    // Keep only the methods present, in the styles' order (a legend without absent entries).
    const present = new Set(rows.map((r) => r.method));
    const keep = options.styles.domain.map((m, i) => [m, i] as const).filter(([m]) =>
      present.has(m)
    );
    const extra = [...present].filter((m) => !options.styles!.domain.includes(m));
    const more = methodStyles(extra.map((label) => ({ label })));
    return {
      domain: [...keep.map(([m]) => m), ...more.domain],
      colors: [...keep.map(([, i]) => options.styles!.colors[i]), ...more.colors],
      dashes: [...keep.map(([, i]) => options.styles!.dashes[i]), ...more.dashes],
      shapes: [...keep.map(([, i]) => options.styles!.shapes[i]), ...more.shapes],
      opacity: [...keep.map(([, i]) => options.styles!.opacity[i]), ...more.opacity],
    };
  }
  return methodStyles([...new Set(rows.map((r) => r.method))].map((label) => ({ label })));
}

/** A point of an accuracy curve: A_t (%) of `method` after training through `task`. */
export interface AccuracyCurveRow {
  /** Method label. */
  method: string;
  /** Tasks trained so far (1-based). */
  task: number;
  /** Average accuracy A_t (%). */
  acc: number;
  /** Mean − std over runs (the band's lower edge); absent for one run. */
  low?: number;
  /** Mean + std over runs (the band's upper edge); absent for one run. */
  high?: number;
}

/** A point of a forgetting curve: F_k (percentage points) of `method` after `task`. */
export interface ForgettingCurveRow {
  /** Method label. */
  method: string;
  /** Tasks trained so far (1-based). */
  task: number;
  /** Forgetting F_k (percentage points). */
  forgetting: number;
  /** Mean − std over runs (the band's lower edge); absent for one run. */
  low?: number;
  /** Mean + std over runs (the band's upper edge); absent for one run. */
  high?: number;
}

/** Seconds spent in one named component while training one task. */
export interface TrainingTimeRow {
  /** Method label. */
  method: string;
  /** Task (1-based). */
  task: number;
  /** Component name (e.g. forward_backward, tree_search). */
  component: string;
  /** Wall-clock seconds. */
  seconds: number;
}

/** Final accuracy and training throughput of one run. */
export interface AccuracyThroughputRow {
  /** Method label. */
  method: string;
  /** Final accuracy (%). */
  acc: number;
  /** Training throughput (images, or examples, per second). */
  imagesPerSecond: number;
  /** Std of the accuracy over runs (error bar); absent for one run. */
  accStd?: number;
  /** Std of the throughput over runs (error bar); absent for one run. */
  imagesPerSecondStd?: number;
}

/** One logged loss-term value. */
export interface LossCurveRow {
  /** Method label. */
  method: string;
  /** Task (1-based). */
  task: number;
  /** Step on a run-wide axis (cumulative over tasks and epochs), so tasks follow each other. */
  step: number;
  /** Loss term name (task, regularizer, …). */
  term: string;
  /** The term's value. */
  value: number;
}

// Legend symbols at full opacity: a method's legend entry merges its pale ±std band with its line.
const FONT_CONFIG = { font: "sans-serif", legend: { symbolOpacity: 1 } };

function finiteRows<T extends object>(rows: readonly T[], key: keyof T): T[] {
  return rows.filter((r) => typeof r[key] === "number" && Number.isFinite(r[key] as number))
    .map((r) => ({ ...r }));
}

/**
 * Average accuracy A_t after each task, one line with points per method.
 *
 * @example
 * ```ts
 * import { accuracyCurveSpec } from "./plots.ts";
 * const spec = accuracyCurveSpec([
 *   { method: "seqlora", task: 1, acc: 95 },
 *   { method: "seqlora", task: 2, acc: 80 },
 * ]);
 * ```
 */
export function accuracyCurveSpec(
  rows: readonly AccuracyCurveRow[],
  options: PlotOptions = {},
): PlotSpec {
  return perTaskLineSpec(rows, {
    field: "acc",
    title: options.title ?? "Average accuracy after each task",
    yTitle: options.yTitle ?? "Average accuracy A_t (%)",
    zero: false,
    options,
  });
}

/**
 * Average forgetting F_k after each task, one line with points per method.
 * Rows with non-finite forgetting (k = 1) are dropped.
 *
 * @example
 * ```ts
 * import { forgettingCurveSpec } from "./plots.ts";
 * const spec = forgettingCurveSpec([{ method: "seqlora", task: 2, forgetting: 12.5 }]);
 * ```
 */
export function forgettingCurveSpec(
  rows: readonly ForgettingCurveRow[],
  options: PlotOptions = {},
): PlotSpec {
  return perTaskLineSpec(rows, {
    field: "forgetting",
    title: options.title ?? "Average forgetting after each task",
    yTitle: options.yTitle ?? "Forgetting F_k (% points)",
    zero: true,
    options,
  });
}

/** A value per method after each task: one line with points per method. */
function perTaskLineSpec<T extends { method: string; task: number; low?: number; high?: number }>(
  rows: readonly T[],
  spec: {
    field: keyof T & string;
    title: string;
    yTitle: string;
    zero: boolean;
    options: PlotOptions;
  },
): PlotSpec {
  const values = finiteRows(rows, spec.field);
  const enc = methodEncodings(stylesFor(values, spec.options));
  const x = {
    field: "task",
    type: "ordinal" as const,
    title: "Tasks trained (count)",
    axis: { labelAngle: 0 },
  };
  const y = {
    field: spec.field,
    type: "quantitative" as const,
    title: spec.yTitle,
    ...(spec.zero ? {} : { scale: { zero: false } }),
  };
  const banded = values.some((r) => r.low !== undefined && r.low !== r.high);
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: spec.title,
    width: spec.options.width ?? 400,
    height: spec.options.height ?? 260,
    config: FONT_CONFIG,
    data: { values },
    layer: [
      ...(banded
        ? [{
          mark: { type: "area" as const, opacity: 0.12 },
          encoding: {
            x,
            y: { field: "low", type: "quantitative" as const, title: spec.yTitle },
            y2: { field: "high" },
            color: enc.color,
          },
        }]
        : []),
      {
        mark: { type: "line", point: { size: 36, filled: true }, strokeWidth: 2 },
        encoding: {
          x,
          y,
          color: enc.color,
          strokeDash: enc.strokeDash,
          shape: enc.shape,
          tooltip: [
            { field: "method", type: "nominal" },
            { field: "task", type: "ordinal" },
            { field: spec.field, type: "quantitative", format: ".2f" },
          ],
        },
      },
    ],
  } as PlotSpec;
}

/**
 * Training time per method, stacked by component (the paper's Fig. 4b): one horizontal bar per
 * method (sum over its tasks; rows of several runs should be averaged over them first), one
 * colour per component.
 *
 * @example
 * ```ts
 * import { trainingTimeSpec } from "./plots.ts";
 * const spec = trainingTimeSpec([
 *   { method: "treelora", task: 1, component: "forward_backward", seconds: 12.5 },
 *   { method: "treelora", task: 1, component: "search", seconds: 0.4 },
 * ]);
 * ```
 */
export function trainingTimeSpec(
  rows: readonly TrainingTimeRow[],
  options: PlotOptions = {},
): PlotSpec {
  const values = finiteRows(rows, "seconds");
  const methods = stylesFor(values, options).domain;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title ?? "Training time per method by component",
    config: FONT_CONFIG,
    data: { values },
    mark: { type: "bar" },
    width: options.width ?? 420,
    height: options.height ?? Math.max(80, 24 * methods.length),
    encoding: {
      y: { field: "method", type: "nominal", title: "Method", sort: methods },
      x: {
        aggregate: "sum",
        field: "seconds",
        type: "quantitative",
        title: options.xTitle ?? "Training time, all tasks (s)",
        stack: "zero",
      },
      color: {
        field: "component",
        type: "nominal",
        title: "Component",
        scale: { scheme: "tableau20" },
      },
      tooltip: [
        { field: "method", type: "nominal" },
        { field: "component", type: "nominal" },
        { aggregate: "sum", field: "seconds", type: "quantitative", format: ".2f", title: "s" },
      ],
    },
  };
}

/**
 * Heatmap of the accuracy matrix R with the value printed in each cell:
 * trained-through task on y, evaluated task on x (both 1-based). `NaN`
 * (unevaluated) cells are left blank. Colour scale fixed to 0–100 %.
 *
 * @example
 * ```ts
 * import { accuracyHeatmapSpec } from "./plots.ts";
 * const spec = accuracyHeatmapSpec([[90, NaN], [70, 92]], { method: "seqlora" });
 * ```
 */
export function accuracyHeatmapSpec(
  R: readonly (readonly number[])[],
  options: PlotOptions & { method: string; digits?: number },
): PlotSpec {
  const values: { trained: number; task: number; acc: number }[] = [];
  R.forEach((row, i) =>
    row.forEach((acc, j) => {
      if (Number.isFinite(acc)) values.push({ trained: i + 1, task: j + 1, acc });
    })
  );
  const T = R.length;
  const digits = options.digits ?? 1;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title ?? `Accuracy matrix R (%): ${options.method}`,
    width: options.width ?? Math.max(200, 36 * T),
    height: options.height ?? Math.max(200, 36 * T),
    config: FONT_CONFIG,
    data: { values },
    encoding: {
      x: {
        field: "task",
        type: "ordinal",
        title: "Evaluated task j",
        axis: { labelAngle: 0, orient: "top" },
      },
      y: { field: "trained", type: "ordinal", title: "Trained through task i" },
    },
    layer: [
      {
        mark: { type: "rect" },
        encoding: {
          color: {
            field: "acc",
            type: "quantitative",
            title: "Accuracy (%)",
            scale: { domain: [0, 100], scheme: "viridis" },
          },
          tooltip: [
            { field: "trained", type: "ordinal", title: "trained through" },
            { field: "task", type: "ordinal", title: "task" },
            { field: "acc", type: "quantitative", format: ".2f", title: "acc (%)" },
          ],
        },
      },
      {
        mark: { type: "text", fontSize: T > 12 ? 7 : 10 },
        encoding: {
          text: { field: "acc", type: "quantitative", format: `.${digits}f` },
          color: { condition: { test: "datum.acc < 60", value: "white" }, value: "black" },
        },
      },
    ],
  };
}

/**
 * Final accuracy against training throughput, one labelled point per row.
 *
 * @example
 * ```ts
 * import { accuracyVsThroughputSpec } from "./plots.ts";
 * const spec = accuracyVsThroughputSpec([
 *   { method: "seqlora", acc: 60.2, imagesPerSecond: 410 },
 *   { method: "treelora", acc: 71.8, imagesPerSecond: 380 },
 * ]);
 * ```
 */
export function accuracyVsThroughputSpec(
  rows: readonly AccuracyThroughputRow[],
  options: PlotOptions = {},
): PlotSpec {
  const values = finiteRows(finiteRows(rows, "acc"), "imagesPerSecond").map((r) => {
    const sa = Number.isFinite(r.accStd) ? r.accStd! : 0;
    const si = Number.isFinite(r.imagesPerSecondStd) ? r.imagesPerSecondStd! : 0;
    return {
      ...r,
      accLow: r.acc - sa,
      accHigh: r.acc + sa,
      ipsLow: Math.max(0, r.imagesPerSecond - si),
      ipsHigh: r.imagesPerSecond + si,
    };
  });
  const enc = methodEncodings(stylesFor(values, options));
  const xTitle = options.xTitle ?? "Training throughput (images/s)";
  const yTitle = options.yTitle ?? "Final average accuracy (%)";
  // Throughput cannot be negative: the axis starts at 0.
  const x = {
    field: "imagesPerSecond",
    type: "quantitative" as const,
    title: xTitle,
    scale: { zero: true, domainMin: 0 },
  };
  const y = {
    field: "acc",
    type: "quantitative" as const,
    title: yTitle,
    scale: { zero: false, padding: 10 },
  };
  const errorColor = enc.color;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title ?? "Accuracy vs training throughput",
    width: options.width ?? 420,
    height: options.height ?? 280,
    config: FONT_CONFIG,
    data: { values },
    layer: [
      {
        mark: { type: "rule" },
        encoding: {
          x,
          y: { field: "accLow", type: "quantitative", title: yTitle },
          y2: { field: "accHigh" },
          color: errorColor,
        },
      },
      {
        mark: { type: "rule" },
        encoding: {
          y,
          x: { field: "ipsLow", type: "quantitative", title: xTitle },
          x2: { field: "ipsHigh" },
          color: errorColor,
        },
      },
      {
        mark: { type: "point", filled: true, size: 90, opacity: 1 },
        encoding: {
          x,
          y,
          color: enc.color,
          shape: enc.shape,
          tooltip: [
            { field: "method", type: "nominal" },
            { field: "acc", type: "quantitative", format: ".2f" },
            { field: "imagesPerSecond", type: "quantitative", format: ".1f" },
          ],
        },
      },
    ],
  } as PlotSpec;
}

/**
 * Loss terms over training steps: one panel per method (at most 4 per row), one colour per
 * term, a line per task (the step counts within each task, epochs concatenated). Every panel has
 * its own x and y scales, and y is symmetric-log, so a term near 0 beside one near 40 is seen.
 *
 * @example
 * ```ts
 * import { lossCurveSpec } from "./plots.ts";
 * const spec = lossCurveSpec([
 *   { method: "treelora", task: 1, step: 0, term: "task", value: 2.3 },
 *   { method: "treelora", task: 1, step: 10, term: "task", value: 1.1 },
 * ]);
 * ```
 */
export function lossCurveSpec(
  rows: readonly LossCurveRow[],
  options: PlotOptions = {},
): PlotSpec {
  const values = finiteRows(finiteRows(rows, "value"), "step");
  const methods = stylesFor(values, options).domain;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title ?? "Loss terms during training",
    config: FONT_CONFIG,
    data: { values },
    facet: { field: "method", type: "nominal", title: "Method", sort: methods },
    columns: 4,
    resolve: { scale: { x: "independent", y: "independent" } },
    spec: {
      width: options.width ?? 220,
      height: options.height ?? 140,
      mark: { type: "line", strokeWidth: 1.2 },
      encoding: {
        x: {
          field: "step",
          type: "quantitative",
          title: options.xTitle ?? "Step within the task (epochs concatenated)",
        },
        y: {
          field: "value",
          type: "quantitative",
          title: options.yTitle ?? "Value (symlog scale)",
          scale: { type: "symlog" },
        },
        color: {
          field: "term",
          type: "nominal",
          title: "Loss term",
          scale: { scheme: "tableau10" },
        },
        detail: { field: "task", type: "ordinal" },
        tooltip: [
          { field: "method", type: "nominal" },
          { field: "task", type: "ordinal" },
          { field: "step", type: "quantitative" },
          { field: "term", type: "nominal" },
          { field: "value", type: "quantitative", format: ".4f" },
        ],
      },
    },
  } as PlotSpec;
}

/** One point of a learning curve: mean (and spread) accuracy after `samplesSeen` images. */
export interface LearningCurveRow {
  /** Method label. */
  method: string;
  /** Training images seen in the task so far. */
  samplesSeen: number;
  /** Mean accuracy (%) over the averaged tasks and seeds. */
  accuracy: number;
  /** Mean − std (equal to the mean for one value). */
  low: number;
  /** Mean + std (equal to the mean for one value). */
  high: number;
}

/**
 * The paper's Fig. 1: accuracy on a held-out subset of the task being trained against the
 * training images seen in it, one line per method with a ±std band.
 *
 * @example
 * ```ts
 * import { learningCurveSpec } from "./plots.ts";
 * const spec = learningCurveSpec([
 *   { method: "seqlora", samplesSeen: 0, accuracy: 10, low: 10, high: 10 },
 *   { method: "seqlora", samplesSeen: 160, accuracy: 60, low: 55, high: 65 },
 * ]);
 * ```
 */
export function learningCurveSpec(
  rows: readonly LearningCurveRow[],
  options: PlotOptions = {},
): PlotSpec {
  const x = {
    field: "samplesSeen",
    type: "quantitative" as const,
    title: options.xTitle ?? "Training images seen in the new task",
  };
  const enc = methodEncodings(stylesFor(rows, options));
  const color = enc.color;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title ?? "Accuracy on the new task while training it",
    width: options.width ?? 420,
    height: options.height ?? 260,
    config: FONT_CONFIG,
    data: { values: finiteRows(rows, "accuracy") },
    layer: [
      {
        mark: { type: "area", opacity: 0.12 },
        encoding: {
          x,
          y: { field: "low", type: "quantitative" },
          y2: { field: "high" },
          color,
        },
      },
      {
        mark: { type: "line", point: { size: 30, filled: true }, strokeWidth: 2 },
        encoding: {
          x,
          y: {
            field: "accuracy",
            type: "quantitative",
            title: options.yTitle ?? "Held-out accuracy on the task (%)",
            scale: { domain: [0, 100] },
          },
          color,
          strokeDash: enc.strokeDash,
          shape: enc.shape,
          tooltip: [
            { field: "method", type: "nominal" },
            { field: "samplesSeen", type: "quantitative" },
            { field: "accuracy", type: "quantitative", format: ".1f" },
          ],
        },
      },
    ],
  };
}

/** Total training time of one method: mean and std over its runs. */
export interface MethodTimeRow {
  /** Method label. */
  method: string;
  /** Mean total training seconds. */
  seconds: number;
  /** Std over runs (0 for one run). */
  std: number;
}

/**
 * The paper's Fig. 4(b): total training time per method, one bar each (in the given order)
 * with a ±std error bar over runs.
 *
 * @example
 * ```ts
 * import { methodTimeSpec } from "./plots.ts";
 * const spec = methodTimeSpec([{ method: "seqlora", seconds: 40, std: 2 }]);
 * ```
 */
export function methodTimeSpec(
  rows: readonly MethodTimeRow[],
  options: PlotOptions = {},
): PlotSpec {
  const values = finiteRows(rows, "seconds").map((r) => ({
    ...r,
    low: r.seconds - (Number.isFinite(r.std) ? r.std : 0),
    high: r.seconds + (Number.isFinite(r.std) ? r.std : 0),
  }));
  const y = {
    field: "method",
    type: "nominal" as const,
    title: "Method",
    sort: rows.map((r) => r.method),
  };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title ?? "Total training time per method (mean ± std over runs)",
    width: options.width ?? 380,
    height: options.height ?? Math.max(80, 26 * rows.length),
    config: FONT_CONFIG,
    data: { values },
    layer: [
      {
        mark: { type: "bar" },
        encoding: {
          y,
          x: {
            field: "seconds",
            type: "quantitative",
            title: options.xTitle ?? "Training time, all tasks (s)",
          },
          tooltip: [
            { field: "method", type: "nominal" },
            { field: "seconds", type: "quantitative", format: ".1f" },
            { field: "std", type: "quantitative", format: ".1f" },
          ],
        },
      },
      {
        mark: { type: "rule" },
        encoding: { y, x: { field: "low", type: "quantitative" }, x2: { field: "high" } },
      },
    ],
  };
}
