import { assertAlmostEquals, assertEquals } from "@std/assert";
import { Timer } from "../../lib/methods/timer.ts";

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

Deno.test("Timer accounts nested sections exclusively", () => {
  const timer = new Timer();
  timer.time("outer", () => {
    busy(30);
    timer.time("inner", () => busy(50));
  });
  const t = timer.totals();
  assertAlmostEquals(t.inner, 0.05, 0.02);
  assertAlmostEquals(t.outer, 0.03, 0.02);
  assertEquals(timer.counts(), { inner: 1, outer: 1 });
  timer.reset();
  assertEquals(timer.totals(), {});
});

Deno.test("Timer.timeAsync returns the value and records time even on throw", async () => {
  const timer = new Timer();
  const v = await timer.timeAsync("a", () => Promise.resolve(42));
  assertEquals(v, 42);
  try {
    timer.time("b", () => {
      throw new Error("x");
    });
  } catch { /* expected */ }
  assertEquals(Object.keys(timer.totals()).sort(), ["a", "b"]);
});
