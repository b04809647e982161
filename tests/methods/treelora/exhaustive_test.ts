import { assertEquals, assertThrows } from "@std/assert";
import { allSiteDistances, nearestArms } from "../../../lib/methods/treelora/exhaustive.ts";
import { siteDistances } from "../../../lib/methods/treelora/signature.ts";

// M = 2 sites, D = 3 values per site, 3 stored tasks.
const CURRENT = new Float64Array([1, 0, -1, 2, 2, 0]);
const STORED = [
  new Float64Array([1, 0, -1, 0, 0, 0]),
  new Float64Array([0, 0, 0, 2, 2, 1]),
  new Float32Array([2, 1, 0, 2, 2, 0]),
];

/** The definition, element by element: out[k·M + d] = Σ_i |C[d·D + i] − V_k[d·D + i]|. */
function naive(current: ArrayLike<number>, stored: ArrayLike<number>[], dim: number): number[] {
  const numSites = current.length / dim;
  const out: number[] = [];
  for (const v of stored) {
    for (let d = 0; d < numSites; d++) {
      let s = 0;
      for (let i = 0; i < dim; i++) s += Math.abs(current[d * dim + i] - v[d * dim + i]);
      out.push(s);
    }
  }
  return out;
}

Deno.test("allSiteDistances equals the hand-computed table and the naive definition", () => {
  const table = allSiteDistances(CURRENT, STORED, { dim: 3 });
  // task 0: site 0 |0|+|0|+|0| = 0, site 1 |2|+|2|+|0| = 4
  // task 1: site 0 |1|+|0|+|−1| = 2, site 1 |0|+|0|+|−1| = 1
  // task 2: site 0 |−1|+|−1|+|−1| = 3, site 1 0
  assertEquals(Array.from(table), [0, 4, 2, 1, 3, 0]);
  assertEquals(Array.from(table), naive(CURRENT, STORED, 3));
});

Deno.test("allSiteDistances agrees with siteDistances for every task", () => {
  const table = allSiteDistances(CURRENT, STORED, { dim: 3 });
  for (let k = 0; k < STORED.length; k++) {
    const row = siteDistances(CURRENT, STORED, new Int32Array([k, k]), { dim: 3 });
    assertEquals(Array.from(table.subarray(2 * k, 2 * k + 2)), Array.from(row));
  }
});

Deno.test("nearestArms takes the per-site argmin, ties to the first task", () => {
  const table = allSiteDistances(CURRENT, STORED, { dim: 3 });
  assertEquals(Array.from(nearestArms(table, { numSites: 2 })), [0, 2]);
  assertEquals(Array.from(nearestArms([5, 1, 5, 1], { numSites: 2 })), [0, 0]);
});

Deno.test("allSiteDistances and nearestArms reject bad shapes", () => {
  assertThrows(() => allSiteDistances(CURRENT, [], { dim: 3 }), Error, "no stored");
  assertThrows(() => allSiteDistances(CURRENT, STORED, { dim: 4 }), Error, "multiple of dim 4");
  assertThrows(
    () => allSiteDistances(CURRENT, [new Float64Array(4)], { dim: 3 }),
    Error,
    "task 0 has 4 values",
  );
  assertThrows(() => nearestArms([1, 2, 3], { numSites: 2 }), Error, "3 distances");
  assertThrows(() => nearestArms([], { numSites: 2 }), Error, "0 distances");
});
