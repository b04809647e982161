/**
 * The tables of `deno task bench:profile`: kernels grouped into op families,
 * each family's share of a training step, and the phases of the step (forward,
 * backward, clipping + Adam) with the time spent outside kernels.
 *
 * A kernel belongs to the first family whose list names it; a kernel no list
 * names is `other`. The families follow what a fused kernel would replace:
 * matrix products (already on the system BLAS), softmax, layout ops (reshape,
 * transpose, slicing, concatenation, gathers, casts: pure data movement),
 * reductions, and element-wise math (activations, normalisation arithmetic,
 * LoRA scaling, dropout masks, the optimiser's update).
 *
 * @module
 */

import type { KernelTime, StepProfile } from "./tfjs_steps.ts";

/** The op families, in the order a kernel is matched against them. */
export const OP_FAMILIES: readonly { family: string; kernels: readonly string[] }[] = [
  { family: "matmul", kernels: ["BatchMatMul", "_FusedMatMul", "MatMul"] },
  { family: "softmax", kernels: ["Softmax", "LogSoftmax"] },
  {
    family: "layout",
    kernels: [
      "Reshape",
      "Transpose",
      "Slice",
      "StridedSlice",
      "Concat",
      "GatherV2",
      "GatherNd",
      "Pack",
      "Unpack",
      "Tile",
      "PadV2",
      "MirrorPad",
      "SplitV",
      "Cast",
      "Identity",
      "BroadcastTo",
      "Reverse",
      "ScatterNd",
      "UnsortedSegmentSum",
      "OneHot",
      "Fill",
      "ZerosLike",
      "OnesLike",
      "Range",
    ],
  },
  {
    family: "reduction",
    kernels: ["Sum", "Max", "Min", "Mean", "Prod", "ArgMax", "ArgMin", "All", "Any", "Cumsum"],
  },
  {
    family: "elementwise",
    kernels: [
      "Add",
      "AddN",
      "Sub",
      "Multiply",
      "RealDiv",
      "FloorDiv",
      "Neg",
      "Square",
      "SquaredDifference",
      "Maximum",
      "Minimum",
      "Pow",
      "Sqrt",
      "Rsqrt",
      "Reciprocal",
      "Exp",
      "Expm1",
      "Log",
      "Log1p",
      "Tanh",
      "Sigmoid",
      "Erf",
      "Relu",
      "Relu6",
      "Elu",
      "LeakyRelu",
      "Prelu",
      "Step",
      "Sign",
      "Abs",
      "Select",
      "Greater",
      "GreaterEqual",
      "Less",
      "LessEqual",
      "Equal",
      "NotEqual",
      "LogicalAnd",
      "LogicalOr",
      "LogicalNot",
      "ClipByValue",
      "Cos",
      "Sin",
      "Softplus",
      "IsFinite",
      "IsNan",
    ],
  },
];

/**
 * The family of a kernel name (`other` when no family lists it).
 *
 * @example
 * ```ts
 * import { opFamily } from "./profile_report.ts";
 * opFamily("BatchMatMul"); // "matmul"
 * opFamily("Transpose"); // "layout"
 * opFamily("Conv2D"); // "other"
 * ```
 */
export function opFamily(kernel: string): string {
  for (const f of OP_FAMILIES) if (f.kernels.includes(kernel)) return f.family;
  return "other";
}

/** One family's time in a phase. */
export interface FamilyShare {
  family: string;
  /** Kernel calls per step. */
  calls: number;
  /** Milliseconds per step inside the family's kernels. */
  ms: number;
  /** Fraction of the phase's kernel time. */
  shareOfKernels: number;
  /** Fraction of the phase's wall-clock time. */
  shareOfWall: number;
}

/**
 * Sum kernel times by family, largest first; shares of the total kernel time and of `wallMs`.
 *
 * @example
 * ```ts
 * import { familyShares } from "./profile_report.ts";
 * const rows = familyShares([
 *   { name: "BatchMatMul", calls: 2, ms: 6 },
 *   { name: "Add", calls: 3, ms: 1 },
 *   { name: "Mul", calls: 1, ms: 1 },
 * ], { wallMs: 10 });
 * rows[0]; // { family: "matmul", calls: 2, ms: 6, shareOfKernels: 0.75, shareOfWall: 0.6 }
 * ```
 */
export function familyShares(
  kernels: readonly KernelTime[],
  options: { wallMs: number },
): FamilyShare[] {
  const total = kernels.reduce((s, k) => s + k.ms, 0);
  const by = new Map<string, { calls: number; ms: number }>();
  for (const k of kernels) {
    const f = opFamily(k.name);
    const t = by.get(f) ?? { calls: 0, ms: 0 };
    t.calls += k.calls;
    t.ms += k.ms;
    by.set(f, t);
  }
  return [...by].map(([family, t]) => ({
    family,
    calls: t.calls,
    ms: t.ms,
    shareOfKernels: total > 0 ? t.ms / total : 0,
    shareOfWall: options.wallMs > 0 ? t.ms / options.wallMs : 0,
  })).sort((a, b) => b.ms - a.ms);
}

/** One phase row of {@link phaseRows}. */
export interface PhaseRow {
  phase: string;
  /** Wall-clock ms (medians; the derived phases are differences of medians). */
  wallMs: number;
  /** ms inside kernels. */
  kernelMs: number;
  /** wallMs − kernelMs: the tape, allocation and JavaScript around the kernels. */
  outsideMs: number;
}

/**
 * The step cut into forward, backward (forward + backward − forward) and clipping + Adam
 * (step − forward + backward), each with its time inside and outside kernels, then the step.
 *
 * @example
 * ```ts
 * import { phaseRows } from "./profile_report.ts";
 * const phase = (wallMs: number, ms: number) => ({
 *   wallMs, peakBytes: 0, kernels: [{ name: "Add", calls: 1, ms }], scopes: [],
 * });
 * const rows = phaseRows({
 *   forward: phase(10, 8), forwardBackward: phase(30, 24), step: phase(36, 28),
 *   params: { base: 0, lora: 0, head: 0, total: 0, trainable: 0 }, leakedTensors: 0,
 * });
 * rows.map((r) => [r.phase, r.wallMs, r.kernelMs]);
 * // [["forward", 10, 8], ["backward", 20, 16], ["clip + Adam", 6, 4], ["step", 36, 28]]
 * ```
 */
export function phaseRows(p: StepProfile): PhaseRow[] {
  const kernelMs = (ks: readonly KernelTime[]) => ks.reduce((s, k) => s + k.ms, 0);
  const f = { wall: p.forward.wallMs, kernel: kernelMs(p.forward.kernels) };
  const fb = { wall: p.forwardBackward.wallMs, kernel: kernelMs(p.forwardBackward.kernels) };
  const st = { wall: p.step.wallMs, kernel: kernelMs(p.step.kernels) };
  const row = (phase: string, wall: number, kernel: number): PhaseRow => ({
    phase,
    wallMs: wall,
    kernelMs: kernel,
    outsideMs: wall - kernel,
  });
  return [
    row("forward", f.wall, f.kernel),
    row("backward", fb.wall - f.wall, fb.kernel - f.kernel),
    row("clip + Adam", st.wall - fb.wall, st.kernel - fb.kernel),
    row("step", st.wall, st.kernel),
  ];
}

function n1(x: number): string {
  return x.toFixed(1);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

/**
 * Markdown for one profiled configuration: the phase table, the step's families and its top
 * kernels.
 *
 * @example
 * ```ts ignore
 * const md = profileMarkdown("vit tiny lora", profile, { top: 12 });
 * ```
 */
export function profileMarkdown(
  title: string,
  p: StepProfile,
  options: { top: number },
): string {
  const lines: string[] = [`### ${title}`, ""];
  lines.push(
    `Trainable / total parameters: ${p.params.trainable.toLocaleString("en-US")} / ${
      p.params.total.toLocaleString("en-US")
    }; peak tensor memory of the step ${n1(p.step.peakBytes / 2 ** 20)} MiB` +
      (p.leakedTensors !== 0 ? `; **${p.leakedTensors} tensors leaked**` : "") + ".",
    "",
    "| phase | wall ms | in kernels ms | outside kernels ms | outside share |",
    "| --- | ---: | ---: | ---: | ---: |",
  );
  for (const r of phaseRows(p)) {
    lines.push(
      `| ${r.phase} | ${n1(r.wallMs)} | ${n1(r.kernelMs)} | ${n1(r.outsideMs)} | ${
        r.wallMs > 0 ? pct(r.outsideMs / r.wallMs) : "–"
      } |`,
    );
  }
  lines.push(
    "",
    "| op family (whole step) | calls | ms | share of kernel time | share of wall time |",
    "| --- | ---: | ---: | ---: | ---: |",
  );
  for (const f of familyShares(p.step.kernels, { wallMs: p.step.wallMs })) {
    lines.push(
      `| ${f.family} | ${Math.round(f.calls)} | ${n1(f.ms)} | ${pct(f.shareOfKernels)} | ${
        pct(f.shareOfWall)
      } |`,
    );
  }
  const total = p.step.kernels.reduce((s, k) => s + k.ms, 0);
  lines.push(
    "",
    `| kernel (top ${options.top}, whole step) | family | calls | ms | share of kernel time | ms per call |`,
    "| --- | --- | ---: | ---: | ---: | ---: |",
  );
  for (const k of p.step.kernels.slice(0, options.top)) {
    lines.push(
      `| ${k.name} | ${opFamily(k.name)} | ${Math.round(k.calls)} | ${n1(k.ms)} | ${
        pct(total > 0 ? k.ms / total : 0)
      } | ${(k.ms / Math.max(1, k.calls)).toFixed(3)} |`,
    );
  }
  if (p.step.scopes.length > 0) {
    lines.push(
      "",
      `Scopes around kernels (time includes the kernels above, not added): ${
        p.step.scopes.map((k) => `${k.name} ${Math.round(k.calls)}× ${n1(k.ms)} ms`).join(", ")
      }.`,
    );
  }
  lines.push("");
  return lines.join("\n");
}
