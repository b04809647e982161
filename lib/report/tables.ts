/**
 * Report tables with arquero: CSV and Markdown output, CSV input, and
 * mean ± std over seeds.
 *
 * Rows are plain objects (`Record<string, unknown>`). Columns are the union of
 * the keys of all rows, in order of first appearance; a key missing from a row
 * is written as an empty CSV cell and read back as `null`.
 *
 * @module
 */

import * as aq from "arquero";
import { writeFileAtomic } from "../io.ts";

/** A table row: column name → value. */
export type Row = Record<string, unknown>;

/** Output formats of {@link writeTable}. */
export type TableFormat = "csv" | "md";

/** arquero's rollup argument type (its op helpers return `Op`, which the typings do not admit). */
type RollupSpec = NonNullable<Parameters<aq.ColumnTable["rollup"]>[0]>;

/** Column names: union of the rows' keys, in order of first appearance. */
function columnNames(rows: readonly Row[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  return [...seen];
}

function toTable(rows: readonly Row[]) {
  return aq.from(rows as Row[], columnNames(rows));
}

/**
 * Format rows as CSV (header line + one line per row, `\n` line ends).
 * Numbers are written in full precision (`NaN` as `NaN`); `null`/`undefined`
 * as empty cells; strings with commas, quotes or newlines are quoted.
 * An empty row list gives an empty string.
 *
 * @example
 * ```ts
 * import { tableToCsv } from "./tables.ts";
 * tableToCsv([{ method: "seqlora", acc: 88.5 }]); // "method,acc\nseqlora,88.5\n"
 * ```
 */
export function tableToCsv(rows: readonly Row[]): string {
  if (rows.length === 0) return "";
  return toTable(rows).toCSV();
}

/**
 * Format rows as a GitHub-flavoured Markdown table. Numbers are shown with
 * `digits` fractional digits (default 2), except in columns whose numbers are
 * all integers (task, seed, n), which are shown without decimals; `NaN` as
 * `NaN`, missing values as empty cells; `|` in strings is escaped.
 *
 * @example
 * ```ts
 * import { tableToMarkdown } from "./tables.ts";
 * tableToMarkdown([{ method: "seqlora", acc: 88.456 }], { digits: 1 });
 * // "|method|acc|\n|:-|-:|\n|seqlora|88.5|\n"
 * ```
 */
export function tableToMarkdown(rows: readonly Row[], options: { digits?: number } = {}): string {
  if (rows.length === 0) return "";
  const digits = options.digits ?? 2;
  const format: Record<string, (v: unknown) => string> = {};
  for (const name of columnNames(rows)) {
    const integers = rows.every((r) => {
      const v = r[name];
      return typeof v !== "number" || !Number.isFinite(v) || Number.isInteger(v);
    });
    format[name] = (v) => formatCell(v, integers ? 0 : digits);
  }
  return toTable(rows).toMarkdown({ format });
}

function formatCell(v: unknown, digits: number): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isFinite(v) ? v.toFixed(digits) : String(v);
  return String(v);
}

/**
 * Write rows to `<pathWithoutExt>.csv` and/or `<pathWithoutExt>.md`
 * atomically (parent directories are created). Returns the paths written.
 *
 * @example
 * ```ts
 * import { writeTable } from "./tables.ts";
 * const paths = await writeTable("/tmp/treelora-example-table", [{ method: "seqlora", acc: 88.5 }]);
 * // ["/tmp/treelora-example-table.csv", "/tmp/treelora-example-table.md"]
 * ```
 */
export async function writeTable(
  pathWithoutExt: string,
  rows: readonly Row[],
  options: { formats?: readonly TableFormat[]; digits?: number } = {},
): Promise<string[]> {
  const formats = options.formats ?? ["csv", "md"];
  const paths: string[] = [];
  for (const format of formats) {
    const path = `${pathWithoutExt}.${format}`;
    if (format === "csv") await writeFileAtomic(path, tableToCsv(rows));
    else if (format === "md") {
      await writeFileAtomic(path, tableToMarkdown(rows, { digits: options.digits }));
    } else throw new Error(`writeTable: unknown format ${JSON.stringify(format)} (csv, md)`);
    paths.push(path);
  }
  return paths;
}

/**
 * Read a CSV file into row objects (arquero `fromCSV`, with type inference:
 * numeric columns become numbers (`NaN` included), `true`/`false` columns
 * booleans, ISO-date columns `Date`s, empty cells `null`). So rows written by
 * {@link writeTable} come back equal, except that a string column whose
 * values all look like numbers (e.g. `"007"`) comes back as numbers. An empty
 * file gives `[]`. Errors name the file.
 *
 * @example
 * ```ts
 * import { readCsvRows, writeTable } from "./tables.ts";
 * await writeTable("/tmp/treelora-example-read", [{ task: 1, acc: 90 }], { formats: ["csv"] });
 * const rows = await readCsvRows("/tmp/treelora-example-read.csv"); // [{ task: 1, acc: 90 }]
 * ```
 */
export async function readCsvRows(path: string): Promise<Row[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (text.trim() === "") return [];
  try {
    return aq.fromCSV(text).objects() as Row[];
  } catch (err) {
    throw new Error(`${path} is not valid CSV: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Group rows (e.g. one per seed) and summarise value columns.
 *
 * Output: one row per group, in order of first appearance, with the `by`
 * columns, `n` (rows in the group), and for each value column `v`:
 * `v_mean` and `v_std`. `v_std` is the sample standard deviation (divisor
 * n − 1), so it is `NaN` when n = 1 — one seed says nothing about spread. If
 * any value of `v` in a group is missing or non-numeric (`null`, `NaN`, a
 * string), that group's `v_mean` and `v_std` are `NaN`: a missing seed never
 * silently changes an average.
 *
 * @example
 * ```ts
 * import { summariseOverSeeds } from "./tables.ts";
 * summariseOverSeeds(
 *   [{ method: "a", seed: 0, acc: 88.5 }, { method: "a", seed: 1, acc: 88.6 }],
 *   { by: ["method"], values: ["acc"] },
 * ); // [{ method: "a", n: 2, acc_mean: 88.55, acc_std: 0.0707… }]
 * ```
 */
export function summariseOverSeeds(
  rows: readonly Row[],
  options: { by: readonly string[]; values: readonly string[] },
): Row[] {
  const { by, values } = options;
  if (values.length === 0) {
    throw new Error("summariseOverSeeds: values must name at least one column");
  }
  if (rows.length === 0) return [];
  const cols = new Set(columnNames(rows));
  for (const c of [...by, ...values]) {
    if (!cols.has(c)) {
      throw new Error(
        `summariseOverSeeds: no column ${JSON.stringify(c)} (columns: ${[...cols].join(", ")})`,
      );
    }
    if (c === "n" || values.some((v) => c === `${v}_mean` || c === `${v}_std`)) {
      throw new Error(
        `summariseOverSeeds: column name ${JSON.stringify(c)} clashes with the output`,
      );
    }
  }
  // Non-numbers (null, strings) become NaN so that op.valid counts them as missing.
  const clean = rows.map((row) => {
    const out: Row = {};
    for (const k of by) out[k] = row[k] ?? null;
    values.forEach((v, i) => out[`__v${i}`] = typeof row[v] === "number" ? row[v] : NaN);
    return out;
  });
  const spec: Record<string, unknown> = { __n: aq.op.count() };
  values.forEach((_, i) => {
    spec[`__m${i}`] = aq.op.mean(`__v${i}`);
    spec[`__s${i}`] = aq.op.stdev(`__v${i}`);
    spec[`__k${i}`] = aq.op.valid(`__v${i}`);
  });
  const base = aq.from(clean);
  const grouped = by.length > 0 ? base.groupby(...by) : base;
  const groups = grouped.rollup(spec as RollupSpec).objects() as Row[];
  return groups.map((g) => {
    const n = g.__n as number;
    const out: Row = {};
    for (const k of by) out[k] = g[k];
    out.n = n;
    values.forEach((v, i) => {
      const complete = g[`__k${i}`] === n;
      out[`${v}_mean`] = complete ? g[`__m${i}`] as number : NaN;
      out[`${v}_std`] = complete && n > 1 ? g[`__s${i}`] as number : NaN;
    });
    return out;
  });
}

/**
 * Format a mean and standard deviation as `"88.54 ± 0.05"`.
 * A non-finite std (`NaN` for a single seed) gives the mean alone, `"88.54"`
 * (show n beside it); a `NaN` mean gives `"n/a"`.
 *
 * @example
 * ```ts
 * import { formatMeanStd } from "./tables.ts";
 * formatMeanStd(88.5421, 0.0498); // "88.54 ± 0.05"
 * formatMeanStd(88.5421, NaN, { digits: 1 }); // "88.5"
 * ```
 */
export function formatMeanStd(
  mean: number,
  std: number,
  options: { digits?: number } = {},
): string {
  const digits = options.digits ?? 2;
  if (!Number.isFinite(mean)) return Number.isNaN(mean) ? "n/a" : String(mean);
  const m = mean.toFixed(digits);
  return Number.isFinite(std) ? `${m} ± ${std.toFixed(digits)}` : m;
}
