import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  accAvgIncremental,
  accFinal,
  accuracyAfterEachTask,
  allAverageTreelora,
  bwtGem,
  bwtTrace,
  bwtTreeloraCode,
  CL_METRICS,
  computeMetrics,
  forgettingAfterEachTask,
  forgettingFirstLast,
  forgettingMax,
  forgettingPerTask,
  fwtGem,
  learningAcc,
  opTrace,
  validateAccuracyMatrix,
} from "../../lib/metrics/mod.ts";

const EPS = 1e-9;

/*
 * Matrix A (T = 3, lower triangle only). Formula notation (1-based): rows = trained through.
 *
 *            task1 task2 task3
 *   after 1:   80    -     -
 *   after 2:   88    90    -      ← task 1 improves after task 2 (positive transfer)
 *   after 3:   70    75    85
 *
 * ACC = (70 + 75 + 85)/3 = 230/3 = 76.6667          OP_T = ACC
 * A_1 = 80, A_2 = (88 + 90)/2 = 89, A_3 = 230/3
 * Ā = (80 + 89 + 230/3)/3 = (240 + 267 + 230)/9 = 737/9 = 81.8889
 * AllAvg = (80 + 88 + 90 + 70 + 75 + 85)/6 = 488/6 = 81.3333
 * LA = (80 + 90 + 85)/3 = 85
 * forgetting_max: column 1 is non-monotone (80, 88, 70): max over rows 1..2 = 88 ≠ diagonal 80
 *   f_1 = 88 − 70 = 18, f_2 = max(90) − 75 = 15, F = (18 + 15)/2 = 16.5
 * forgetting_first_last: ((80 − 70) + (90 − 75))/2 = 12.5
 * BWT_gem = ((70 − 80) + (75 − 90))/2 = −12.5
 * BWT_trace = (−10 − 15 + 0)/3 = −25/3 = BWT_gem · (T−1)/T = −12.5 · 2/3
 * BWT_code = (min(−10,0) + min(−15,0) + 0)/3 = −25/3 (all drops negative, so = BWT_trace)
 * FWT: no upper triangle → NaN
 * F_k: F_1 = NaN, F_2 = (80 − 88)/1 = −8, F_3 = 16.5
 */
const A = [
  [80, NaN, NaN],
  [88, 90, NaN],
  [70, 75, 85],
];

/*
 * Matrix B (T = 4, full matrix incl. upper triangle) with baseline b = [0, 12, 10, 20] (b_1 unused).
 *
 *            t1  t2  t3  t4
 *   after 1: 50  10  20   5
 *   after 2: 60  70  15  10
 *   after 3: 55  65  80  30
 *   after 4: 65  60  70  90
 *
 * ACC = (65 + 60 + 70 + 90)/4 = 285/4 = 71.25
 * A = [50, 65, 200/3, 71.25]; Ā = (50 + 65 + 200/3 + 71.25)/4 = 758.75/12 = 63.229166…
 * AllAvg = (50 + 130 + 200 + 285)/10 = 66.5
 * LA = (50 + 70 + 80 + 90)/4 = 72.5
 * forgetting_max: f_1 = max(50, 60, 55) − 65 = −5 (task 1 ended above every earlier score),
 *   f_2 = max(70, 65) − 60 = 10, f_3 = 80 − 70 = 10 → F = 15/3 = 5
 * forgetting_first_last: ((50 − 65) + (70 − 60) + (80 − 70))/3 = 5/3
 * BWT_gem = (15 − 10 − 10)/3 = −5/3
 * BWT_trace = −5/4 = −5/3 · 3/4
 * BWT_code = (min(15,0) + min(−10,0) + min(−10,0) + 0)/4 = −20/4 = −5  (positive 15 clipped)
 * FWT = ((10 − 12) + (15 − 10) + (30 − 20))/3 = 13/3
 * F_k: F_1 = NaN; F_2 = 50 − 60 = −10; F_3 = ((max(50,60) − 55) + (70 − 65))/2 = 5; F_4 = 5
 */
const B = [
  [50, 10, 20, 5],
  [60, 70, 15, 10],
  [55, 65, 80, 30],
  [65, 60, 70, 90],
];
const B_BASE = [0, 12, 10, 20];

function near(actual: number, expected: number, msg?: string): void {
  assertAlmostEquals(actual, expected, EPS, msg);
}

function nearAll(actual: number[], expected: number[]): void {
  assertEquals(actual.length, expected.length);
  actual.forEach((v, i) => {
    if (Number.isNaN(expected[i])) assert(Number.isNaN(v), `index ${i}: expected NaN, got ${v}`);
    else near(v, expected[i], `index ${i}`);
  });
}

Deno.test("matrix A: accuracy metrics", () => {
  near(accFinal(A), 230 / 3);
  near(opTrace(A), 230 / 3);
  near(accAvgIncremental(A), 737 / 9);
  near(allAverageTreelora(A), 488 / 6);
  near(learningAcc(A), 85);
  nearAll(accuracyAfterEachTask(A), [80, 89, 230 / 3]);
});

Deno.test("matrix A: forgetting uses the max over earlier rows, not the diagonal", () => {
  nearAll(forgettingPerTask(A), [18, 15]);
  near(forgettingMax(A), 16.5);
  near(forgettingFirstLast(A), 12.5);
  nearAll(forgettingAfterEachTask(A), [NaN, -8, 16.5]);
});

Deno.test("matrix A: backward and forward transfer", () => {
  near(bwtGem(A), -12.5);
  near(bwtTrace(A), -25 / 3);
  near(bwtTrace(A), bwtGem(A) * (3 - 1) / 3);
  near(bwtTreeloraCode(A), -25 / 3);
  assert(Number.isNaN(fwtGem(A)));
  assert(Number.isNaN(fwtGem(A, { baseline: [0, 0, 0] })), "upper triangle missing → NaN");
});

Deno.test("matrix B: accuracy metrics", () => {
  near(accFinal(B), 71.25);
  near(opTrace(B), 71.25);
  near(accAvgIncremental(B), 758.75 / 12);
  near(allAverageTreelora(B), 66.5);
  near(learningAcc(B), 72.5);
  nearAll(accuracyAfterEachTask(B), [50, 65, 200 / 3, 71.25]);
});

Deno.test("matrix B: forgetting, including a negative per-task value", () => {
  nearAll(forgettingPerTask(B), [-5, 10, 10]);
  near(forgettingMax(B), 5);
  near(forgettingFirstLast(B), 5 / 3);
  near(forgettingFirstLast(B), -bwtGem(B));
  nearAll(forgettingAfterEachTask(B), [NaN, -10, 5, 5]);
  near(forgettingAfterEachTask(B)[3], forgettingMax(B));
});

Deno.test("matrix B: BWT variants and FWT", () => {
  near(bwtGem(B), -5 / 3);
  near(bwtTrace(B), -5 / 4);
  near(bwtTrace(B), bwtGem(B) * 3 / 4);
  near(bwtTreeloraCode(B), -5);
  near(fwtGem(B, { baseline: B_BASE }), 13 / 3);
  assert(Number.isNaN(fwtGem(B)), "no baseline → NaN");
  assert(Number.isNaN(fwtGem(B, { baseline: [0, NaN, 10, 20] })), "NaN baseline entry → NaN");
});

Deno.test("positive backward transfer: clipped only in bwt_treelora_code", () => {
  // R = [[80, -], [85, 90]]: R[2,1] − R[1,1] = +5.
  // BWT_gem = 5, BWT_trace = 5/2, BWT_code = (0 + 0)/2 = 0, forgetting_max = 80 − 85 = −5.
  const R = [[80, NaN], [85, 90]];
  near(bwtGem(R), 5);
  near(bwtTrace(R), 2.5);
  assertEquals(bwtTreeloraCode(R), 0);
  near(forgettingMax(R), -5);
});

Deno.test("T = 1: accuracy metrics defined, transfer and forgetting NaN", () => {
  const R = [[42]];
  for (const f of [accFinal, opTrace, accAvgIncremental, allAverageTreelora, learningAcc]) {
    assertEquals(f(R), 42, f.name);
  }
  for (const f of [forgettingMax, forgettingFirstLast, bwtGem, bwtTrace, bwtTreeloraCode]) {
    assert(Number.isNaN(f(R)), `${f.name} should be NaN at T = 1`);
  }
  assert(Number.isNaN(fwtGem(R, { baseline: [10] })));
  assertEquals(accuracyAfterEachTask(R), [42]);
  assert(Number.isNaN(forgettingAfterEachTask(R)[0]));
  assertEquals(forgettingAfterEachTask(R).length, 1);
  assertEquals(forgettingPerTask(R), []);
});

Deno.test("computeMetrics: every registered metric, in order, with formulas", () => {
  const rows = computeMetrics(B, { baseline: B_BASE });
  assertEquals(rows.map((r) => r.metric), CL_METRICS.map((m) => m.name));
  assertEquals(rows.map((r) => r.metric), [
    "acc_final",
    "acc_avg_incremental",
    "op_trace",
    "all_average_treelora",
    "learning_acc",
    "forgetting_max",
    "forgetting_first_last",
    "bwt_gem",
    "bwt_trace",
    "bwt_treelora_code",
    "fwt_gem",
  ]);
  const value = (name: string) => rows.find((r) => r.metric === name)!.value;
  near(value("acc_final"), 71.25);
  near(value("forgetting_max"), 5);
  near(value("bwt_treelora_code"), -5);
  near(value("fwt_gem"), 13 / 3);
  for (const r of rows) assert(r.formula.length > 0 && r.formula.includes("="), r.metric);
  const noBase = computeMetrics(A);
  assert(Number.isNaN(noBase.find((r) => r.metric === "fwt_gem")!.value));
});

Deno.test("CL_METRICS table: fields are consistent", () => {
  const names = new Set<string>();
  for (const m of CL_METRICS) {
    assert(!names.has(m.name), `duplicate ${m.name}`);
    names.add(m.name);
    assert(m.requires === "lower" || m.requires === "upper");
    assert(m.minTasks === 1 || m.minTasks === 2);
    assertEquals(typeof m.higherIsBetter, "boolean");
    const v = m.compute([[42]]);
    assertEquals(Number.isNaN(v), m.minTasks > 1, m.name);
  }
  const byName = Object.fromEntries(CL_METRICS.map((m) => [m.name, m]));
  assertEquals(byName.forgetting_max.higherIsBetter, false);
  assertEquals(byName.bwt_gem.higherIsBetter, true);
  assertEquals(byName.fwt_gem.requires, "upper");
  assert(byName.forgetting_max.formula.includes("max_{l=j..T−1}"));
  assert(Object.isFrozen(CL_METRICS) && Object.isFrozen(CL_METRICS[0]));
});

Deno.test("invalid input: clear errors", () => {
  assertThrows(() => accFinal([]), RangeError, "empty");
  assertThrows(() => accFinal([[1, 2], [3]]), RangeError, "row 1 has 1 entries");
  assertThrows(() => accFinal([[1, 2, 3], [4, 5, 6]]), RangeError, "square");
  assertThrows(() => accFinal([[1, NaN], [NaN, 2]]), RangeError, "R[1][0] is NaN");
  assertThrows(() => bwtGem([[1, NaN], [3, NaN]]), RangeError, "bwt_gem: R[1][1] is NaN");
  assertThrows(() => accFinal([[Infinity]]), RangeError, "finite or NaN");
  assertThrows(() => accFinal([[0.5, NaN], [101, 3]]), RangeError, "0–100");
  assertThrows(() => accFinal([[-1]]), RangeError, "0–100");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => accFinal([["80"]] as any), TypeError, "must be a number");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => accFinal("R" as any), TypeError, "array of rows");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => accFinal([5] as any), TypeError, "row 0");
  assertThrows(() => computeMetrics([[1, NaN], [NaN, 2]]), RangeError, "computeMetrics");
  assertThrows(() => fwtGem(B, { baseline: [1, 2] }), RangeError, "expected T = 4");
  assertThrows(() => fwtGem(B, { baseline: [0, 0, 0, 200] }), RangeError, "baseline[3]");
  // NaN in the upper triangle is fine for lower-triangle metrics.
  validateAccuracyMatrix(A, { requires: "lower" });
  // fwt_gem does not need the lower triangle.
  near(fwtGem([[NaN, 30], [NaN, NaN]], { baseline: [0, 10] }), 20);
});
