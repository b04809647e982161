import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  flattenSites,
  selectedRows,
  SignatureAccumulator,
  siteDistances,
} from "../../../lib/methods/treelora/signature.ts";

function assertArrayAlmost(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12) {
  assertEquals(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assertAlmostEquals(actual[i], expected[i], tol);
}

Deno.test("flattenSites stacks M sites row-major", () => {
  const flat = flattenSites([
    { name: "s0", values: new Float32Array([1, 2, 3]) },
    { name: "s1", values: new Float64Array([4, 5, 6]) },
  ]);
  assertEquals(flat.numSites, 2);
  assertEquals(flat.dim, 3);
  assertEquals(Array.from(flat.data), [1, 2, 3, 4, 5, 6]);
});

Deno.test("flattenSites names the site whose size differs", () => {
  const err = assertThrows(() =>
    flattenSites([
      { name: "blocks.0.q", values: new Float32Array(4) },
      { name: "blocks.0.v", values: new Float32Array(4) },
      { name: "blocks.1.q", values: new Float32Array(6) },
    ])
  );
  assertEquals((err as Error).message.includes("blocks.1.q"), true);
  assertThrows(() => flattenSites([]));
});

Deno.test("code accumulator: C = M·Σ G/T (the insert_grad bug), partial mid-window", () => {
  const acc = new SignatureAccumulator({
    numSites: 3,
    dim: 2,
    scale: "modules",
    source: "lora_a_values",
  });
  assertEquals(acc.factor, 3);
  acc.reset(4);
  const steps = [
    [1, 2, 3, 4, 5, 6],
    [2, 2, 2, 2, 2, 2],
    [0, 1, 0, 1, 0, 1],
    [-1, 3, 1, 1, 1, -1],
  ].map((s) => new Float64Array(s));
  acc.add(steps[0]);
  // Mid-window: (M/T)·G_0
  assertArrayAlmost(acc.value(), steps[0].map((x) => (3 / 4) * x));
  for (const s of steps.slice(1)) acc.add(s);
  const mean = new Float64Array(6);
  for (const s of steps) for (let i = 0; i < 6; i++) mean[i] += s[i] / 4;
  assertArrayAlmost(acc.snapshot(), mean.map((x) => 3 * x));
  assertArrayAlmost(acc.runningMean(), mean);
  // Window full:
  assertThrows(() => acc.add(steps[0]));
});

Deno.test("paper accumulator: scale one gives the plain mean; reset zeroes", () => {
  const acc = new SignatureAccumulator({
    numSites: 2,
    dim: 1,
    scale: "one",
    source: "lora_a_grads",
  });
  assertEquals(acc.source, "lora_a_grads");
  assertThrows(() => acc.add(new Float64Array(2))); // no reset yet
  acc.reset(2);
  assertThrows(() => acc.snapshot()); // nothing added
  acc.add(new Float32Array([1, 4]));
  acc.add(new Float32Array([3, 0]));
  assertArrayAlmost(acc.snapshot(), [2, 2]);
  acc.reset(1);
  assertArrayAlmost(acc.value(), [0, 0]);
  assertThrows(() => acc.add(new Float64Array(3)));
});

Deno.test("accumulator state round trip", () => {
  const options = { numSites: 2, dim: 2, scale: "modules", source: "lora_a_values" } as const;
  const a = new SignatureAccumulator(options);
  a.reset(3);
  a.add(new Float64Array([1, 2, 3, 4]));
  const b = new SignatureAccumulator(options);
  const state = a.state();
  b.restore(state);
  state.value.fill(99); // the state is a copy, not a view
  assertEquals(a.value()[0], 1 / 3 * 2);
  assertEquals(b.added, 1);
  assertEquals(b.windowSteps, 3);
  a.add(new Float64Array([1, 1, 1, 1]));
  b.add(new Float64Array([1, 1, 1, 1]));
  assertArrayAlmost(b.value(), a.value());
});

Deno.test("selectedRows and siteDistances read the selected task's site row", () => {
  const stored = [new Float64Array([1, 2, 3, 4, 5, 6]), new Float64Array([7, 8, 9, 10, 11, 12])];
  const sel = new Int32Array([1, 0, 1]);
  const rows = selectedRows(stored, sel, { dim: 2 });
  assertEquals(rows.map((r) => Array.from(r)), [[7, 8], [3, 4], [11, 12]]);
  assertEquals(rows[0] instanceof Float32Array, true);
  const current = new Float64Array([7, 7, 0, 0, 12, 12]);
  assertArrayAlmost(siteDistances(current, stored, sel, { dim: 2 }), [1, 7, 1]);
  assertThrows(() => selectedRows(stored, new Int32Array([2, 0, 0]), { dim: 2 }));
  assertThrows(() => siteDistances(new Float64Array(4), stored, sel, { dim: 2 }));
});
