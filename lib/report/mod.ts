/**
 * Report building blocks: arquero tables (CSV, Markdown, mean ± std over
 * seeds), Vega-Lite spec builders, and SVG/PNG rendering.
 *
 * @example
 * ```ts
 * import { accuracyCurveSpec, renderSvg, tableToCsv } from "./mod.ts";
 * const csv = tableToCsv([{ method: "seqlora", task: 1, acc: 95 }]);
 * const svg = await renderSvg(accuracyCurveSpec([{ method: "seqlora", task: 1, acc: 95 }]));
 * ```
 *
 * @module
 */

export * from "./tables.ts";
export * from "./plots.ts";
export * from "./render.ts";
