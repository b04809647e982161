import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { bootstrapIntervals, quantileSorted } from "../../lib/metrics/bootstrap.ts";
import { Rng } from "../../lib/random.ts";

Deno.test("quantileSorted is the type-7 (linear interpolation) quantile", () => {
  assertEquals(quantileSorted([0, 10, 20, 30], 0.5), 15);
  assertEquals(quantileSorted([0, 10, 20, 30], 0), 0);
  assertEquals(quantileSorted([0, 10, 20, 30], 1), 30);
  assertAlmostEquals(quantileSorted([0, 10, 20, 30], 0.025), 0.75, 1e-12); // h = 0.075
  assertEquals(quantileSorted([5], 0.3), 5);
});

Deno.test("the interval of a known score vector, by hand, for seed 7 and 4 replicates", () => {
  // One task, scores [0, 100, 100]. Each replicate draws 3 indices with Rng(7).int(3); the draws
  // of that generator are listed so the replicate means can be read off by hand.
  const rng = new Rng(7);
  const draws = Array.from({ length: 4 }, () => [rng.int(3), rng.int(3), rng.int(3)]);
  const scores = [0, 100, 100];
  const means = draws.map((d) => d.reduce((a, k) => a + scores[k], 0) / 3);
  assertEquals(draws, [[0, 1, 1], [0, 2, 1], [0, 0, 0], [0, 1, 2]]);
  // Replicate means: 200/3, 200/3, 0, 200/3; sorted: 0, 200/3, 200/3, 200/3.
  assertEquals(means.map((m) => Math.round(m * 100) / 100), [66.67, 66.67, 0, 66.67]);
  const r = bootstrapIntervals([{ tasks: ["a"], rounds: [[scores]] }], { replicates: 4, seed: 7 });
  assertAlmostEquals(r.op.value, 200 / 3, 1e-12);
  // Type 7: low at h = 3 · 0.025 = 0.075: 0 + 0.075 · (200/3 − 0) = 5;
  // high at h = 3 · 0.975 = 2.925: 200/3 + 0.925 · 0 = 200/3.
  assertAlmostEquals(r.op.low, 5, 1e-12);
  assertAlmostEquals(r.op.high, 200 / 3, 1e-12);
  assertAlmostEquals(r.finalScores[0].interval.low, 5, 1e-12);
  assertEquals(Number.isNaN(r.bwt.value) && Number.isNaN(r.bwt.low), true); // one task: no BWT
});

Deno.test("BWT is paired across rounds: unchanged scores give a zero-width BWT interval", () => {
  const a = [0, 100, 100, 0, 100, 0, 0, 100]; // task a, same per-example scores in both rounds
  const b = [100, 100, 0, 0];
  const cell = { tasks: ["a", "b"], rounds: [[a], [a, b]] };
  const r = bootstrapIntervals([cell], { replicates: 300, seed: 3 });
  assertEquals([r.bwt.value, r.bwt.low, r.bwt.high], [0, 0, 0]);
  assertEquals(r.op.value, 50);
  // OP is not degenerate: both tasks' test samples vary.
  assertEquals(r.op.low < 50 && r.op.high > 50, true);
});

Deno.test("an accuracy of 50 % on 100 examples has a 95 % interval of about ±10 points", () => {
  const scores = Array.from({ length: 100 }, (_, k) => (k % 2 === 0 ? 100 : 0));
  const r = bootstrapIntervals([{ tasks: ["t"], rounds: [[scores]] }], { seed: 11 });
  // Normal approximation: 1.96 · sqrt(0.25 / 100) · 100 = 9.8 points.
  assertAlmostEquals(r.op.high - 50, 9.8, 1.5);
  assertAlmostEquals(50 - r.op.low, 9.8, 1.5);
});

Deno.test("cells pool into the interval of their mean, drawing the same test indices", () => {
  const up = { tasks: ["t"], rounds: [[[0, 0, 100, 100]]] };
  const down = { tasks: ["t"], rounds: [[[100, 100, 0, 0]]] }; // the complement: the mean is 50
  const r = bootstrapIntervals([up, down], { replicates: 200, seed: 5 });
  assertEquals([r.op.value, r.op.low, r.op.high], [50, 50, 50]);
  assertThrows(
    () => bootstrapIntervals([up, { tasks: ["t"], rounds: [[[1, 2]]] }]),
    RangeError,
    "every round must score the same test set",
  );
  assertThrows(
    () => bootstrapIntervals([up, { tasks: ["u"], rounds: [[[1, 2, 3, 4]]] }]),
    RangeError,
    "must share their tasks",
  );
  assertThrows(() => bootstrapIntervals([{ tasks: ["a", "b"], rounds: [[[1]]] }]), RangeError);
});
