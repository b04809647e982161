import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  compareFamilies,
  comparisonMarkdown,
  TORCH_OP_FAMILIES,
  torchOpFamily,
} from "../../experiments/bench/torch_profile.ts";
import type { PhaseProfile, StepProfile } from "../../experiments/bench/tfjs_steps.ts";

Deno.test("torchOpFamily: aten ops by their lists, other rows are framework, unknown aten ops other", () => {
  assertEquals(
    [
      "aten::addmm",
      "aten::bmm",
      "aten::mkldnn_convolution",
      "aten::_softmax_backward_data",
      "aten::nll_loss_forward",
      "aten::copy_",
      "aten::embedding_dense_backward",
      "aten::sum",
      "aten::gelu_backward",
      "aten::native_layer_norm",
      "aten::bernoulli_",
      "aten::addcdiv_",
      "aten::nonzero",
      "autograd::engine::evaluate_function: MmBackward0",
      "MmBackward0",
      "Optimizer.step#Adam.step",
    ].map(torchOpFamily),
    [
      "matmul",
      "matmul",
      "matmul",
      "softmax",
      "softmax",
      "layout",
      "layout",
      "reduction",
      "elementwise",
      "elementwise",
      "elementwise",
      "elementwise",
      "other",
      "framework",
      "framework",
      "framework",
    ],
  );
  const all = TORCH_OP_FAMILIES.flatMap((f) => f.ops);
  assertEquals(all.length, new Set(all).size, "an op listed in two families");
});

function phase(wallMs: number, kernels: PhaseProfile["kernels"]): PhaseProfile {
  return { wallMs, peakBytes: 0, kernels, scopes: [] };
}

const TFJS: StepProfile = {
  forward: phase(10, []),
  forwardBackward: phase(20, []),
  // kernels 30 ms of a 36 ms step: matmul 18, elementwise 8 (Multiply 5 + Add 3), layout 4
  step: phase(36, [
    { name: "BatchMatMul", calls: 10, ms: 18 },
    { name: "Multiply", calls: 6, ms: 5 },
    { name: "Transpose", calls: 4, ms: 4 },
    { name: "Add", calls: 3, ms: 3 },
  ]),
  params: { base: 0, lora: 0, head: 0, total: 0, trainable: 0 },
  leakedTensors: 0,
};

const TORCH_PROFILE = {
  steps: 2,
  ops: [
    { name: "aten::mm", calls: 8, ms: 12 },
    { name: "aten::addmm", calls: 2, ms: 4 },
    { name: "aten::mul", calls: 6, ms: 1.5 },
    { name: "aten::native_layer_norm", calls: 2, ms: 0.5 },
    { name: "aten::copy_", calls: 20, ms: 1 },
    { name: "autograd::engine::evaluate_function: MmBackward0", calls: 8, ms: 0.6 },
    { name: "Optimizer.step#Adam.step", calls: 1, ms: 0.4 },
  ],
};

Deno.test("compareFamilies: hand sums on both sides; tfjs's framework is wall − kernels", () => {
  const rows = compareFamilies(TFJS.step, TORCH_PROFILE);
  assertEquals(rows.map((r) => [r.family, r.tfjsMs, r.torchMs]), [
    ["matmul", 18, 16],
    ["elementwise", 8, 2],
    ["reduction", 0, 0],
    ["softmax", 0, 0],
    ["layout", 4, 1],
    ["other", 0, 0],
    ["framework", 6, 1],
  ]);
  // kernels longer than the wall clock (profiler overhead): framework 0, not negative
  const over = compareFamilies({ ...TFJS.step, wallMs: 25 }, TORCH_PROFILE);
  assertEquals(over.find((r) => r.family === "framework")?.tfjsMs, 0);
});

Deno.test("comparisonMarkdown: each family's ratio and difference, then PyTorch's top ops", () => {
  const md = comparisonMarkdown(TFJS, TORCH_PROFILE, { torchMedianMs: 20.5, top: 3 });
  // totals: tfjs 36 (kernels 30 + framework 6), PyTorch 20
  assertStringIncludes(md, "its unprofiled median step 20.5 ms against tfjs's 36.0 ms");
  assertStringIncludes(md, "| matmul | 18.0 | 16.0 | 1.13× | +2.0 |");
  assertStringIncludes(md, "| elementwise | 8.0 | 2.0 | 4.00× | +6.0 |");
  assertStringIncludes(md, "| layout | 4.0 | 1.0 | 4.00× | +3.0 |");
  assertStringIncludes(md, "| framework | 6.0 | 1.0 | 6.00× | +5.0 |");
  assertStringIncludes(md, "| all | 36.0 | 20.0 | 1.80× | +16.0 |");
  assert(!md.includes("| reduction |"), "families empty on both sides are left out");
  assertStringIncludes(md, "| aten::mm | matmul | 8 | 12.0 |");
  assert(!md.includes("aten::copy_"), "only the top 3 PyTorch ops");
  const faster = comparisonMarkdown(TFJS, {
    steps: 1,
    ops: [{ name: "aten::mm", calls: 1, ms: 20 }],
  }, { torchMedianMs: 20, top: 1 });
  assertStringIncludes(faster, "| matmul | 18.0 | 20.0 | 0.90× | −2.0 |");
});
