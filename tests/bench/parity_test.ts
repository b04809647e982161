import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { maxRelativeDifference } from "../../experiments/bench/parity.ts";

Deno.test("maxRelativeDifference: the worst step's |a − b| / |b|; equal curves give 0; lengths must match", () => {
  assertAlmostEquals(maxRelativeDifference([2, 1, 4], [2, 1.001, 4.002]), 0.001 / 1.001, 1e-12);
  assertEquals(maxRelativeDifference([4.656271, 4.6], [4.656271, 4.6]), 0);
  // the webgpu AddN failure of results/bench/parity_webgpu_llvmpipe_tf_addn.md, step 5
  assertAlmostEquals(maxRelativeDifference([4.493415], [4.436406]), 0.01285, 1e-5);
  assertThrows(() => maxRelativeDifference([1], [1, 2]), Error, "1 and 2 steps");
});
