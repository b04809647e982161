import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  codeRegularizer,
  codeRegularizerCoefficient,
  linearizedSignature,
  paperL1Penalty,
  regularizerTau,
} from "../../../lib/methods/treelora/regularizer.ts";
import { assertArrayAlmostEquals } from "../../helpers.ts";

await tf.setBackend("cpu");

/** Two sites with A of shape [2, 3] (r = 2, d_in = 3). */
const A0 = [
  [0.3, -0.2, 0.5, 0.1, 0.4, -0.3],
  [-0.1, 0.2, 0.3, 0.6, -0.5, 0.2],
];

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * One gradient-descent step of size `lr` on L_total = L_task − R, where L_task is a constant
 * (so only −R moves A). Returns the new A values, the gradient and R's value.
 */
function codeStep(
  targets: Float32Array[],
  options: { taskLoss: number; tau: number; fixSign: boolean; lr: number },
) {
  const vars = A0.map((a) => tf.variable(tf.tensor2d(a, [2, 3])));
  const before = tf.memory().numTensors;
  const result = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const r = codeRegularizer(vars, { targets, ...options });
      return tf.neg(r) as tf.Scalar; // L_task − R with a constant L_task
    }, vars);
    const g = vars.map((v) => grads[v.name].dataSync().slice());
    return { r: -value.dataSync()[0], g };
  });
  assertEquals(tf.memory().numTensors, before); // nothing leaked
  const next = A0.map((a, d) => a.map((x, i) => x - options.lr * result.g[d][i]));
  vars.forEach((v) => v.dispose());
  return { next, grads: result.g, r: result.r };
}

/**
 * D_sum = Σ_d ⟨A_d, P_d⟩ before and after one descent step, and the coefficient k of the step
 * ΔA = k·P (asserting that the step is parallel to P: "toward P" means k > 0).
 */
function movement(next: number[][], targets: Float32Array[]) {
  let dBefore = 0;
  let dAfter = 0;
  for (let d = 0; d < 2; d++) {
    dBefore += dot(A0[d], targets[d]);
    dAfter += dot(next[d], targets[d]);
  }
  const k = (next[0][0] - A0[0][0]) / targets[0][0];
  for (let d = 0; d < 2; d++) {
    for (let i = 0; i < 6; i++) assertAlmostEquals(next[d][i] - A0[d][i], k * targets[d][i], 1e-6);
  }
  return { dBefore, dAfter, k };
}

// P aligned with A (D_sum > 0) and anti-aligned (D_sum < 0).
const P_POS = A0.map((a) => Float32Array.from(a, (x) => 0.8 * x + 0.05));
const P_NEG = A0.map((a) => Float32Array.from(a, (x) => -0.8 * x + 0.05));

Deno.test("regularizerTau ramps λ·t/T within the epoch or stays at λ", () => {
  assertEquals(regularizerTau(0, 8, { lambda: 0.5, rampPerEpoch: true }), 0);
  assertEquals(regularizerTau(4, 8, { lambda: 0.5, rampPerEpoch: true }), 0.25);
  assertEquals(regularizerTau(4, 8, { lambda: 0.5, rampPerEpoch: false }), 0.5);
  assertThrows(() => regularizerTau(-1, 8, { lambda: 0.5, rampPerEpoch: true }));
});

Deno.test("code regulariser: value R = raw/(raw + 1e-5)·L·τ ≈ τ·L", () => {
  const taskLoss = 2.3;
  const tau = 0.25;
  const { r } = codeStep(P_POS, { taskLoss, tau, fixSign: false, lr: 0 });
  const raw = -(dot(A0[0], P_POS[0]) + dot(A0[1], P_POS[1]));
  assert(raw < 0);
  assertAlmostEquals(r, (raw / (raw + 1e-5)) * taskLoss * tau, 1e-5);
  assertAlmostEquals(r, tau * taskLoss, 1e-3);
  assertAlmostEquals(
    codeRegularizerCoefficient(raw, { taskLoss, tau, fixSign: false }) * raw,
    (raw / (raw + 1e-5)) * taskLoss * tau,
    1e-12,
  );
});

Deno.test("code regulariser: D_sum > 0 -> a descent step on -R moves A toward P", () => {
  const taskLoss = 1.7;
  const tau = 0.3;
  const { next, grads } = codeStep(P_POS, { taskLoss, tau, fixSign: false, lr: 0.01 });
  const m = movement(next, P_POS);
  assert(m.dBefore > 0);
  assert(m.dAfter > m.dBefore, "D_sum grows");
  assert(m.k > 0, "the step is a positive multiple of P");
  // Gradient of L_task − R: −(τ·L/(D_sum − 1e−5))·P_d (spec §4.6).
  const c = (tau * taskLoss) / (m.dBefore - 1e-5);
  for (let d = 0; d < 2; d++) {
    assertArrayAlmostEquals(grads[d], Array.from(P_POS[d], (p) => -c * p), 1e-5);
  }
  // fixSign keeps the same direction here.
  const fixed = codeStep(P_POS, { taskLoss, tau, fixSign: true, lr: 0.01 });
  const mf = movement(fixed.next, P_POS);
  assert(mf.dAfter > mf.dBefore);
  assert(mf.k > 0);
});

Deno.test("code regulariser: D_sum < 0 -> away from P in code mode, toward with fixSign", () => {
  const taskLoss = 1.7;
  const tau = 0.3;
  const code = movement(
    codeStep(P_NEG, { taskLoss, tau, fixSign: false, lr: 0.01 }).next,
    P_NEG,
  );
  assert(code.dBefore < 0);
  assert(code.dAfter < code.dBefore, "code: |D_sum| grows");
  assert(code.k < 0, "code: the step is a negative multiple of P (away from P)");
  const fixedStep = codeStep(P_NEG, { taskLoss, tau, fixSign: true, lr: 0.01 });
  const fixed = movement(fixedStep.next, P_NEG);
  assert(fixed.dAfter > fixed.dBefore, "fixSign: D_sum grows");
  assert(fixed.k > 0, "fixSign: the step is a positive multiple of P (toward P)");
  // With fixSign the value is τ·L·sign(D_sum) = −τ·L here.
  assertAlmostEquals(fixedStep.r, -tau * taskLoss, 1e-3);
});

Deno.test("code regulariser: gradient is invariant to rescaling P (the ×M factor is harmless)", () => {
  const options = { taskLoss: 1.1, tau: 0.4, fixSign: false, lr: 0 };
  const base = codeStep(P_POS, options);
  const scaled = codeStep(P_POS.map((p) => p.map((x) => 7 * x)), options);
  for (let d = 0; d < 2; d++) assertArrayAlmostEquals(scaled.grads[d], base.grads[d], 1e-5);
  assertAlmostEquals(scaled.r, base.r, 1e-5);
});

Deno.test("paper penalty: hand-computed value and gradient, no leaks", () => {
  // A = [[1, -2], [0.5, 0]], P = [0.5, 0.5, 0.5, 1]: |0.5| + |-2.5| + |0| + |-1| = 4; λ = 0.5 -> 2
  const a = tf.variable(tf.tensor2d([[1, -2], [0.5, 0]]));
  const targets = [new Float32Array([0.5, 0.5, 0.5, 1])];
  const before = tf.memory().numTensors;
  const out = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(
      () => paperL1Penalty([a], { targets, lambda: 0.5 }),
      [a],
    );
    return { value: value.dataSync()[0], grad: Array.from(grads[a.name].dataSync()) };
  });
  assertEquals(tf.memory().numTensors, before);
  assertAlmostEquals(out.value, 2, 1e-6);
  // λ·sign(A − P): [0.5, -0.5, ·, -0.5]; at the exact tie TF.js's |x|' is -1, so -0.5.
  assertArrayAlmostEquals(out.grad, [0.5, -0.5, -0.5, -0.5], 1e-6);
  a.dispose();
  assertThrows(() => paperL1Penalty([], { targets: [], lambda: 1 }));
  assertThrows(() =>
    paperL1Penalty([tf.zeros([3])], { targets: [new Float32Array(2)], lambda: 1 })
  );
});

Deno.test("paper penalty on a linearised gradient signature: value from ḡ, gradient λ·sign(ḡ − P)", () => {
  const a = tf.variable(tf.tensor1d([5, 6, 7]));
  const gBar = new Float32Array([0.1, -0.2, 0.3]);
  const targets = [new Float32Array([0, 0, 1])];
  const before = tf.memory().numTensors;
  const out = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(
      () => paperL1Penalty([linearizedSignature(a, gBar)], { targets, lambda: 2 }),
      [a],
    );
    const sig = Array.from(linearizedSignature(a, gBar).dataSync());
    return { value: value.dataSync()[0], grad: Array.from(grads[a.name].dataSync()), sig };
  });
  assertEquals(tf.memory().numTensors, before);
  assertArrayAlmostEquals(out.sig, gBar, 1e-7);
  // 2·(0.1 + 0.2 + 0.7) = 2
  assertAlmostEquals(out.value, 2, 1e-6);
  assertArrayAlmostEquals(out.grad, [2, -2, -2], 1e-6);
  a.dispose();
  assertThrows(() => linearizedSignature(tf.zeros([2]), new Float32Array(3)));
});

Deno.test("regularisers leave no tensors behind inside tf.tidy", () => {
  const vars = A0.map((a) => tf.variable(tf.tensor2d(a, [2, 3])));
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    codeRegularizer(vars, { targets: P_POS, taskLoss: 1, tau: 0.5, fixSign: false });
    paperL1Penalty(vars, { targets: P_POS, lambda: 0.1 });
  });
  assertEquals(tf.memory().numTensors, before);
  // Outside tidy only the returned scalar remains.
  const r = codeRegularizer(vars, { targets: P_POS, taskLoss: 1, tau: 0.5, fixSign: false });
  assertEquals(tf.memory().numTensors, before + 1);
  r.dispose();
  assertThrows(() =>
    codeRegularizer(vars, { targets: [P_POS[0]], taskLoss: 1, tau: 0.5, fixSign: false })
  );
  vars.forEach((v) => v.dispose());
});
