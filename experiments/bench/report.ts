/**
 * Statistics and the report of `deno task bench`: {@link median},
 * {@link ratio}, and the step table ({@link summarizeRows},
 * {@link stepTable}).
 *
 * @module
 */

import type { ParamCounts } from "./specs.ts";

// ---------------------------------------------------------------------------
// Statistics and formatting

/**
 * The median of a non-empty list (the mean of the two middle values for an even length).
 *
 * @example
 * ```ts
 * import { median } from "./report.ts";
 * median([3, 1, 2]); // 2
 * median([4, 1, 2, 3]); // 2.5
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median: empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * `a / b` rounded to 2 decimals, or null when either side is missing or b is not positive.
 *
 * @example
 * ```ts
 * import { ratio } from "./report.ts";
 * ratio(150, 100); // 1.5
 * ratio(150, null); // null
 * ```
 */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !(b > 0) || !Number.isFinite(a)) return null;
  return Math.round((a / b) * 100) / 100;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

// ---------------------------------------------------------------------------
// The report

/** One measured (configuration, variant) pair over all rounds. */
export interface BenchSamples {
  /** `specKey` (specs.ts) of the configuration. */
  key: string;
  /** Backend variant (`wasm`, `wasm+blas`, …) or `pytorch`. */
  variant: string;
  /** Median ms/step of each round. */
  roundMedians: number[];
  /** Peak memory in MiB: tfjs peak tensor bytes of a step, or the peer's peak RSS. */
  peakMiB?: number;
  /** tfjs variants: the peak RSS of the job run in a process of its own (tfjs_peer.ts), MiB. */
  rssMiB?: number;
  /** MiB of activations held for the backward pass at the end of the forward pass (weights left out). */
  savedMiB?: number;
}

/** One row of the step table: a configuration with every variant's median. */
export interface StepRow {
  /** `specKey` (specs.ts) of the configuration. */
  key: string;
  /** Samples per step. */
  samples: number;
  /** Parameter counts (tfjs side). */
  params?: ParamCounts;
  /** Median over rounds of the per-round medians, ms/step, by variant (null = not run). */
  ms: Record<string, number | null>;
  /** Samples per second at that median, by variant. */
  samplesPerSecond: Record<string, number | null>;
  /** Peak memory MiB by variant. */
  peakMiB: Record<string, number | null>;
  /** Peak RSS MiB of the job in its own process, by tfjs variant (null = not measured). */
  peakRssMiB: Record<string, number | null>;
  /** MiB held for the backward pass at the end of the forward pass, by variant (null = not measured). */
  savedMiB?: Record<string, number | null>;
  /** ms/step of each tfjs variant divided by PyTorch's (null without a peer). */
  ratioVsTorch: Record<string, number | null>;
  /** Parameter-count differences with the peer ([] = parity; null = no peer). */
  parity: string[] | null;
}

/**
 * Fold samples into one row per configuration (in `keys` order), with the
 * median over rounds per variant and the ratio of each non-`pytorch` variant
 * to `pytorch`.
 *
 * @example
 * ```ts
 * import { summarizeRows } from "./report.ts";
 * const rows = summarizeRows(["vit tiny lora"], ["wasm"], [
 *   { key: "vit tiny lora", variant: "wasm", roundMedians: [300, 320, 310] },
 *   { key: "vit tiny lora", variant: "pytorch", roundMedians: [100, 110, 105] },
 * ], { samples: { "vit tiny lora": 32 } });
 * rows[0].ratioVsTorch.wasm; // 2.95
 * ```
 */
export function summarizeRows(
  keys: readonly string[],
  variants: readonly string[],
  samples: readonly BenchSamples[],
  info: {
    samples: Record<string, number>;
    params?: Record<string, ParamCounts>;
    parity?: Record<string, string[]>;
  },
): StepRow[] {
  const all = [...variants, "pytorch"];
  return keys.map((key) => {
    const ms: Record<string, number | null> = {};
    const sps: Record<string, number | null> = {};
    const peak: Record<string, number | null> = {};
    const rss: Record<string, number | null> = {};
    const saved: Record<string, number | null> = {};
    for (const v of all) {
      const s = samples.find((x) => x.key === key && x.variant === v);
      const m = s && s.roundMedians.length > 0 ? median(s.roundMedians) : null;
      ms[v] = m === null ? null : round1(m);
      sps[v] = m === null ? null : round1((1000 * info.samples[key]) / m);
      peak[v] = s?.peakMiB === undefined ? null : round1(s.peakMiB);
      if (v !== "pytorch") rss[v] = s?.rssMiB === undefined ? null : round1(s.rssMiB);
      saved[v] = s?.savedMiB === undefined ? null : round1(s.savedMiB);
    }
    const ratios: Record<string, number | null> = {};
    for (const v of variants) ratios[v] = ratio(ms[v], ms.pytorch);
    return {
      key,
      samples: info.samples[key],
      ...(info.params?.[key] ? { params: info.params[key] } : {}),
      ms,
      samplesPerSecond: sps,
      peakMiB: peak,
      peakRssMiB: rss,
      savedMiB: saved,
      ratioVsTorch: ratios,
      parity: info.parity?.[key] ?? null,
    };
  });
}

function cell(x: number | null | undefined, suffix = ""): string {
  return x === null || x === undefined ? "–" : `${x}${suffix}`;
}

/**
 * The markdown table of step rows: configuration, trainable/total parameters,
 * ms/step (samples/s) per variant, PyTorch's, the ratios, peak memory and the
 * parameter-count parity check. The PyTorch and ratio columns are left out
 * when `withTorch` is false.
 *
 * @example
 * ```ts
 * import { stepTable, summarizeRows } from "./report.ts";
 * const rows = summarizeRows(["lm byte-tiny lora"], ["wasm"], [
 *   { key: "lm byte-tiny lora", variant: "wasm", roundMedians: [500] },
 * ], { samples: { "lm byte-tiny lora": 8 } });
 * console.log(stepTable(rows, ["wasm"], { withTorch: false }));
 * ```
 */
export function stepTable(
  rows: readonly StepRow[],
  variants: readonly string[],
  options: { withTorch: boolean },
): string {
  const head = ["config", "trainable / total params"];
  for (const v of variants) head.push(`${v} ms/step (samples/s)`);
  if (options.withTorch) {
    head.push("PyTorch ms/step (samples/s)");
    for (const v of variants) head.push(`${v} / PyTorch`);
  }
  // Fused vs unfused in the same rounds (a variant and its `-unfused` twin).
  const pairs = variants.filter((v) => variants.includes(`${v}-unfused`));
  for (const v of pairs) head.push(`${v} / ${v}-unfused`);
  for (const v of variants) head.push(`${v} peak tensors MiB`);
  const rssVariants = variants.filter((v) => rows.some((r) => r.peakRssMiB?.[v] != null));
  for (const v of rssVariants) head.push(`${v} peak RSS MiB`);
  if (options.withTorch) head.push("PyTorch peak RSS MiB");
  const savedVariants = [...variants, ...(options.withTorch ? ["pytorch"] : [])]
    .filter((v) => rows.some((r) => r.savedMiB?.[v] != null));
  for (const v of savedVariants) {
    head.push(`${v === "pytorch" ? "PyTorch" : v} saved for backward MiB`);
  }
  if (options.withTorch) head.push("param parity");
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) {
    const cells = [
      r.key,
      r.params
        ? `${r.params.trainable.toLocaleString("en-US")} / ${
          r.params.total.toLocaleString("en-US")
        }`
        : "–",
    ];
    const msCell = (v: string) =>
      r.ms[v] === null ? "–" : `${r.ms[v]} (${cell(r.samplesPerSecond[v])})`;
    for (const v of variants) cells.push(msCell(v));
    if (options.withTorch) {
      cells.push(msCell("pytorch"));
      for (const v of variants) cells.push(cell(r.ratioVsTorch[v], "×"));
    }
    for (const v of pairs) {
      const a = r.ms[v];
      const b = r.ms[`${v}-unfused`];
      cells.push(a === null || b === null || b === undefined ? "–" : `${(a / b).toFixed(2)}×`);
    }
    for (const v of variants) cells.push(cell(r.peakMiB[v]));
    for (const v of rssVariants) cells.push(cell(r.peakRssMiB?.[v] ?? null));
    if (options.withTorch) cells.push(cell(r.peakMiB.pytorch));
    for (const v of savedVariants) cells.push(cell(r.savedMiB?.[v] ?? null));
    if (options.withTorch) {
      cells.push(
        r.parity === null
          ? "–"
          : r.parity.length === 0
          ? "equal"
          : `DIFFERS: ${r.parity.join("; ")}`,
      );
    }
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
