import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { bwtCode, bwtPaper, op, traceAggregates } from "../../lib/metrics/trace_aggregate.ts";

/*
 * The independent reproduction of spec §8.2 (Llama-3.2-1B, 8 TRACE tasks). Only the
 * diagonal and the final row are needed; other lower-triangle entries are filled with
 * the diagonal value (they do not enter OP or BWT).
 *   final row: 30.00 29.00 23.99 44.42 52.00 19.75 44.00 38.02 → OP = 281.18 / 8 = 35.1475
 *   diagonal:  53    19    30.66 53.09 67    25.93 42    38.02
 *   R[T,i] − R[i,i]: −23, +10, −6.67, −8.67, −15, −6.18, +2, 0 → Σ = −47.52 → bwtPaper = −5.94
 *   clipped at 0:    −23,   0, −6.67, −8.67, −15, −6.18,  0, 0 → Σ = −59.52 → bwtCode = −7.44
 * (the reproduction reports OP 35.15 and BWT_code −7.44).
 */
const FINAL = [30.0, 29.0, 23.99, 44.42, 52.0, 19.75, 44.0, 38.02];
const DIAG = [53, 19, 30.66, 53.09, 67, 25.93, 42, 38.02];
const R: number[][] = DIAG.map((d, i) =>
  DIAG.map((_, j) => (i === DIAG.length - 1 ? FINAL[j] : j < i ? DIAG[j] : j === i ? d : NaN))
);

Deno.test("trace aggregates: the §8.2 reproduction numbers", () => {
  assertAlmostEquals(op(R), 35.1475, 1e-9);
  assertAlmostEquals(bwtPaper(R), -5.94, 1e-9);
  assertAlmostEquals(bwtCode(R), -7.44, 1e-9);
  const all = traceAggregates(R);
  assertAlmostEquals(all.op, 35.1475, 1e-9);
  assertAlmostEquals(all.bwtPaper, -5.94, 1e-9);
  assertAlmostEquals(all.bwtCode, -7.44, 1e-9);
});

Deno.test("trace aggregates: a 3×3 case worked by hand, positive and negative transfer", () => {
  // R (rows: after task i; columns: task j):
  //   [80,  –,  –]
  //   [70, 60,  –]
  //   [50, 75, 90]
  // OP = (50 + 75 + 90) / 3 = 71.6667; R[T,i] − R[i,i] = −30, +15, 0
  // BWT (TRACE, /T) = (−30 + 15 + 0) / 3 = −5; BWT_code (clipped at 0) = (−30 + 0 + 0) / 3 = −10.
  const r3 = [[80, NaN, NaN], [70, 60, NaN], [50, 75, 90]];
  assertAlmostEquals(op(r3), 215 / 3, 1e-12);
  assertEquals(bwtPaper(r3), -5);
  assertEquals(bwtCode(r3), -10);
  assertEquals(traceAggregates([[60, NaN], [50, 70]]), { op: 60, bwtPaper: -5, bwtCode: -5 });
  // T = 1: BWT is undefined (NaN), OP is the single score.
  const one = traceAggregates([[42]]);
  assertEquals(one.op, 42);
  assertEquals([Number.isNaN(one.bwtPaper), Number.isNaN(one.bwtCode)], [true, true]);
  assertThrows(() => op([[50, NaN], [NaN, 70]]), RangeError, "R[1][0] is NaN");
});
