import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import {
  familyShares,
  OP_FAMILIES,
  opFamily,
  phaseRows,
  profileMarkdown,
} from "../../experiments/bench/profile_report.ts";
import { harnessSpecOptions, specKey, standardSpecs } from "../../experiments/bench/specs.ts";
import { type PhaseProfile, profileTfjsStep } from "../../experiments/bench/tfjs_steps.ts";

Deno.test("opFamily: each kernel in one family; unknown kernels are other", () => {
  assertEquals(
    ["BatchMatMul", "Softmax", "Transpose", "Sum", "Multiply", "Rsqrt", "Conv2D"].map(opFamily),
    ["matmul", "softmax", "layout", "reduction", "elementwise", "elementwise", "other"],
  );
  const all = OP_FAMILIES.flatMap((f) => f.kernels);
  assertEquals(all.length, new Set(all).size, "a kernel listed in two families");
});

Deno.test("familyShares sums by family, largest first, with shares of kernel and wall time", () => {
  const rows = familyShares([
    { name: "Add", calls: 4, ms: 1.5 },
    { name: "BatchMatMul", calls: 6, ms: 12 },
    { name: "Transpose", calls: 2, ms: 2 },
    { name: "Multiply", calls: 3, ms: 2.5 },
    { name: "Conv2D", calls: 1, ms: 2 },
  ], { wallMs: 40 });
  // kernel total 20 ms: matmul 12, elementwise 4, layout 2, other 2.
  assertEquals(rows.map((r) => [r.family, r.calls, r.ms]), [
    ["matmul", 6, 12],
    ["elementwise", 7, 4],
    ["layout", 2, 2],
    ["other", 1, 2],
  ]);
  assertEquals(rows.map((r) => r.shareOfKernels), [0.6, 0.2, 0.1, 0.1]);
  assertEquals(rows.map((r) => r.shareOfWall), [0.3, 0.1, 0.05, 0.05]);
  assertEquals(familyShares([], { wallMs: 0 }), []);
});

Deno.test("phaseRows: backward and clip + Adam as differences of the nested phases", () => {
  const phase = (wallMs: number, ms: number[]): PhaseProfile => ({
    wallMs,
    peakBytes: 0,
    kernels: ms.map((m, i) => ({ name: `K${i}`, calls: 1, ms: m })),
    scopes: [],
  });
  const rows = phaseRows({
    forward: phase(10, [5, 3]),
    forwardBackward: phase(30, [5, 3, 12, 4]),
    step: phase(36, [5, 3, 12, 4, 2, 2]),
    params: { base: 0, lora: 0, head: 0, total: 0, trainable: 0 },
    leakedTensors: 0,
  });
  assertEquals(rows.map((r) => [r.phase, r.wallMs, r.kernelMs, r.outsideMs]), [
    ["forward", 10, 8, 2],
    ["backward", 20, 16, 4],
    ["clip + Adam", 6, 4, 2],
    ["step", 36, 28, 8],
  ]);
});

Deno.test("profileTfjsStep profiles the micro models' nested phases without leaking tensors", async () => {
  await initBackend("cpu");
  const options = harnessSpecOptions({ vitBatch: 2, lmBatch: 2, lmSeqLength: 8 });
  for (const spec of standardSpecs(["micro", "byte-micro"], ["lora"], options)) {
    const p = await profileTfjsStep(spec, { steps: 2, warmup: 1 });
    const key = specKey(spec);
    assertEquals(p.leakedTensors, 0, key);
    const calls = (ph: PhaseProfile, name: string) =>
      ph.kernels.find((k) => k.name === name)?.calls ?? 0;
    // The backward pass multiplies by the transposes: at least two more products per forward one
    // that reaches a trainable weight; the step adds no products.
    const fwd = calls(p.forward, "BatchMatMul") + calls(p.forward, "_FusedMatMul");
    const fb = calls(p.forwardBackward, "BatchMatMul") + calls(p.forwardBackward, "_FusedMatMul");
    const st = calls(p.step, "BatchMatMul") + calls(p.step, "_FusedMatMul");
    assert(fwd > 0 && fb > fwd, `${key}: ${fwd} forward, ${fb} forward + backward products`);
    assertEquals(st, fb, key);
    // Whole calls per step: the profiled steps run the same kernels.
    for (const k of p.step.kernels) assertEquals(Number.isInteger(k.calls), true, k.name);
    // Clipping and Adam run in JavaScript (FlatAdam on cpu/wasm): the step adds no kernel
    // beyond the forward and backward passes' (and the loss and norm read-back scalars).
    const total = (ph: PhaseProfile) => ph.kernels.reduce((s, k) => s + k.calls, 0);
    assert(
      total(p.step) - total(p.forwardBackward) <= 2,
      `${key}: ${total(p.step)} vs ${total(p.forwardBackward)}`,
    );
    assert(p.step.peakBytes > 0 && p.step.wallMs > 0, key);
    // Every kernel is a registered kernel of the backend; the loss's composite op is a scope.
    assertEquals(p.step.kernels.map((k) => opFamily(k.name)).filter((f) => f === "other"), [], key);
    assert(
      p.step.scopes.some((s) =>
        s.name === "softmaxCrossEntropy__op" || s.name.includes("scope") ||
        s.name === "logSoftmax__op"
      ),
      key,
    );
    const md = profileMarkdown(key, p, { top: 3 });
    assertStringIncludes(md, "| clip + Adam |");
    assertEquals(
      md.split("\n").filter((l) => /^\| [A-Za-z0-9_]+ \| [a-z]+ \| \d+ \|/.test(l)).length,
      3,
    );
    const shares = familyShares(p.step.kernels, { wallMs: p.step.wallMs });
    assertAlmostEquals(shares.reduce((s, f) => s + f.shareOfKernels, 0), 1, 1e-9);
  }
});
