/**
 * The PyTorch side of `deno task bench:profile`: the peer's ops
 * (`torch_peer.py` with `profileSteps`, torch.profiler's self CPU time per op)
 * grouped into the same op families as the tfjs kernels
 * (`profile_report.ts`), and the two set side by side per family, so that
 * a gap in step time can be traced to the family that makes it.
 *
 * A torch op's family: matrix products (`aten::mm`, `bmm`, `addmm`, the
 * patch-embedding convolution, which the harness computes as a matrix
 * product), softmax and the loss (`_softmax`, `_log_softmax`, `nll_loss` and
 * their backward), layout (copies, views, reshapes, transposes, slicing,
 * concatenation, the embedding lookup, allocation), reductions (`sum`,
 * `mean`, `norm`), element-wise math (arithmetic, activations, dropout's
 * `bernoulli_`, Adam's in-place updates, and layer norm, which PyTorch runs
 * as one kernel where tfjs runs element-wise and reduction kernels), and
 * `framework`: every row that is not an `aten::` op — autograd's engine
 * (`autograd::engine::evaluate_function: …`, `…Backward0`,
 * `AccumulateGrad`) and the optimiser's Python (`Optimizer.step#Adam.step`)
 * — whose self time is the bookkeeping around the kernels, the counterpart of
 * tfjs's time outside kernels. An `aten::` op no list names is `other`.
 *
 * @module
 */

import { familyShares } from "./profile_report.ts";
import type { StepProfile } from "./tfjs_steps.ts";
import type { TorchProfile } from "./torch_peer.ts";

/** The `aten::` ops of each family (without the prefix), in the order they are matched. */
export const TORCH_OP_FAMILIES: readonly { family: string; ops: readonly string[] }[] = [
  {
    family: "matmul",
    ops: ["mm", "bmm", "addmm", "baddbmm", "addbmm", "mkldnn_convolution", "_convolution", "dot"],
  },
  {
    family: "softmax",
    ops: [
      "_softmax",
      "_softmax_backward_data",
      "_log_softmax",
      "_log_softmax_backward_data",
      "nll_loss_forward",
      "nll_loss_backward",
      "nll_loss2d_forward",
      "nll_loss2d_backward",
    ],
  },
  {
    family: "layout",
    ops: [
      "copy_",
      "_to_copy",
      "clone",
      "contiguous",
      "cat",
      "stack",
      "embedding",
      "embedding_backward",
      "embedding_dense_backward",
      "index_select",
      "index",
      "index_add_",
      "gather",
      "scatter_add_",
      "as_strided",
      "as_strided_",
      "view",
      "reshape",
      "_reshape_alias",
      "_unsafe_view",
      "t",
      "transpose",
      "permute",
      "select",
      "select_backward",
      "slice",
      "slice_backward",
      "narrow",
      "expand",
      "flatten",
      "unsqueeze",
      "squeeze",
      "split",
      "chunk",
      "detach",
      "to",
      "empty",
      "empty_like",
      "empty_strided",
      "new_empty_strided",
      "zeros",
      "zeros_like",
      "ones_like",
      "new_zeros",
      "fill_",
      "zero_",
      "resize_",
    ],
  },
  { family: "reduction", ops: ["sum", "mean", "norm", "linalg_vector_norm", "max", "amax"] },
  {
    family: "elementwise",
    ops: [
      "add",
      "add_",
      "sub",
      "sub_",
      "rsub",
      "mul",
      "mul_",
      "div",
      "div_",
      "neg",
      "pow",
      "sqrt",
      "rsqrt",
      "reciprocal",
      "exp",
      "log",
      "tanh",
      "tanh_backward",
      "sigmoid",
      "sigmoid_backward",
      "silu",
      "silu_backward",
      "gelu",
      "gelu_backward",
      "relu",
      "threshold_backward",
      "bernoulli_",
      "addcmul_",
      "addcdiv_",
      "lerp_",
      "clamp",
      "clamp_",
      "clamp_min",
      "maximum",
      "minimum",
      "where",
      "masked_fill",
      "masked_fill_",
      "native_layer_norm",
      "native_layer_norm_backward",
      "cos",
      "sin",
    ],
  },
];

/**
 * The family of a torch profiler row: an `aten::` op by {@link TORCH_OP_FAMILIES} (`other` when
 * no list names it); any other row is `framework`.
 *
 * @example
 * ```ts
 * import { torchOpFamily } from "./torch_profile.ts";
 * torchOpFamily("aten::addmm"); // "matmul"
 * torchOpFamily("aten::native_layer_norm"); // "elementwise"
 * torchOpFamily("autograd::engine::evaluate_function: MmBackward0"); // "framework"
 * torchOpFamily("aten::nonzero"); // "other"
 * ```
 */
export function torchOpFamily(name: string): string {
  if (!name.startsWith("aten::")) return "framework";
  const op = name.slice("aten::".length);
  for (const f of TORCH_OP_FAMILIES) if (f.ops.includes(op)) return f.family;
  return "other";
}

/** One family's time per step on both sides. */
export interface FamilyComparison {
  family: string;
  /** tfjs: ms inside the family's kernels (profiled); for `framework`, step wall − kernels. */
  tfjsMs: number;
  /** PyTorch: self CPU ms of the family's ops (profiled). */
  torchMs: number;
}

/**
 * The families side by side, in a fixed order (matmul, elementwise, reduction, softmax, layout,
 * other, framework). tfjs's `framework` row is the time outside kernels (the step's median wall
 * time less its profiled kernel time, 0 when that is negative); PyTorch's is the self time of
 * the rows that are not `aten::` ops.
 *
 * @example
 * ```ts
 * import { compareFamilies } from "./torch_profile.ts";
 * const step = { wallMs: 20, peakBytes: 0, scopes: [], kernels: [
 *   { name: "BatchMatMul", calls: 4, ms: 10 }, { name: "Add", calls: 2, ms: 4 }] };
 * const rows = compareFamilies(step, { steps: 1, ops: [
 *   { name: "aten::mm", calls: 4, ms: 9 }, { name: "aten::add", calls: 2, ms: 1 },
 *   { name: "Optimizer.step#Adam.step", calls: 1, ms: 2 }] });
 * rows.map((r) => [r.family, r.tfjsMs, r.torchMs]);
 * // [["matmul", 10, 9], ["elementwise", 4, 1], ["reduction", 0, 0], ["softmax", 0, 0],
 * //  ["layout", 0, 0], ["other", 0, 0], ["framework", 6, 2]]
 * ```
 */
export function compareFamilies(
  tfjsStep: StepProfile["step"],
  torch: TorchProfile,
): FamilyComparison[] {
  const order = ["matmul", "elementwise", "reduction", "softmax", "layout", "other", "framework"];
  const tfjs = new Map<string, number>();
  for (const f of familyShares(tfjsStep.kernels, { wallMs: tfjsStep.wallMs })) {
    tfjs.set(f.family, f.ms);
  }
  const kernelMs = tfjsStep.kernels.reduce((s, k) => s + k.ms, 0);
  tfjs.set("framework", Math.max(0, tfjsStep.wallMs - kernelMs));
  const pt = new Map<string, number>();
  for (const op of torch.ops) {
    const f = torchOpFamily(op.name);
    pt.set(f, (pt.get(f) ?? 0) + op.ms);
  }
  return order.map((family) => ({
    family,
    tfjsMs: tfjs.get(family) ?? 0,
    torchMs: pt.get(family) ?? 0,
  }));
}

function n1(x: number): string {
  return x.toFixed(1);
}

/**
 * Markdown: the families of one configuration side by side (ms per step, their ratio and their
 * difference), the two step times, and PyTorch's top ops.
 *
 * @example
 * ```ts ignore
 * const md = comparisonMarkdown(profile, torch, { torchMedianMs: 95.9, top: 10 });
 * ```
 */
export function comparisonMarkdown(
  tfjs: StepProfile,
  torch: TorchProfile,
  options: { torchMedianMs: number; top: number },
): string {
  const rows = compareFamilies(tfjs.step, torch);
  const tfjsTotal = rows.reduce((s, r) => s + r.tfjsMs, 0);
  const torchTotal = rows.reduce((s, r) => s + r.torchMs, 0);
  const ratio = (a: number, b: number) => b > 0 ? `${(a / b).toFixed(2)}×` : "–";
  const diff = (a: number, b: number) => `${a - b >= 0 ? "+" : "−"}${n1(Math.abs(a - b))}`;
  const lines: string[] = [
    `Against PyTorch (the same model in \`torch_peer.py\`, ${torch.steps} steps under ` +
    `torch.profiler, self CPU time per op; its unprofiled median step ${
      n1(options.torchMedianMs)
    } ms against tfjs's ${n1(tfjs.step.wallMs)} ms):`,
    "",
    "| op family | tfjs ms | PyTorch ms | tfjs / PyTorch | tfjs − PyTorch ms |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    if (r.tfjsMs === 0 && r.torchMs === 0) continue;
    lines.push(
      `| ${r.family} | ${n1(r.tfjsMs)} | ${n1(r.torchMs)} | ${ratio(r.tfjsMs, r.torchMs)} | ${
        diff(r.tfjsMs, r.torchMs)
      } |`,
    );
  }
  lines.push(
    `| all | ${n1(tfjsTotal)} | ${n1(torchTotal)} | ${ratio(tfjsTotal, torchTotal)} | ${
      diff(tfjsTotal, torchTotal)
    } |`,
    "",
    `| PyTorch op (top ${options.top}) | family | calls | ms |`,
    "| --- | --- | ---: | ---: |",
  );
  for (const op of [...torch.ops].sort((a, b) => b.ms - a.ms).slice(0, options.top)) {
    lines.push(
      `| ${op.name} | ${torchOpFamily(op.name)} | ${Math.round(op.calls)} | ${n1(op.ms)} |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}
