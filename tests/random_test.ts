import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { Rng, seedStreams } from "../lib/random.ts";

Deno.test("Rng reproduces the PCG-XSH-RR 32 reference outputs from a known state", () => {
  // Reference computed with the textbook recurrence in Python integers:
  // state = state * 6364136223846793005 + 1442695040888963407 mod 2^64,
  // output = rotr32(((old >> 18) ^ old) >> 27, old >> 59).
  const rng = new Rng(0);
  rng.restore({ hi: 0x12345678, lo: 0x9abcdef0 });
  assertEquals([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()], [
    1369610156,
    2071327681,
    740266394,
  ]);
});

Deno.test("Rng: same seed, same stream; state round-trips", () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const xs = Array.from({ length: 5 }, () => a.next());
  assertEquals(xs, Array.from({ length: 5 }, () => b.next()));
  const s = a.state();
  const next = a.next();
  a.restore(s);
  assertEquals(a.next(), next);
  const c = new Rng(8);
  const ys = Array.from({ length: 5 }, () => c.next());
  assertEquals(xs.every((x, k) => x === ys[k]), false);
});

Deno.test("Rng.int is uniform and in range; categorical follows the weights", () => {
  const rng = new Rng(1);
  const counts = new Array(4).fill(0);
  for (let i = 0; i < 40000; i++) counts[rng.int(4)]++;
  for (const c of counts) assertAlmostEquals(c / 40000, 0.25, 0.015);
  const cat = [0, 0, 0];
  for (let i = 0; i < 40000; i++) cat[rng.categorical([1, 0, 3])]++;
  assertEquals(cat[1], 0);
  assertAlmostEquals(cat[2] / 40000, 0.75, 0.015);
  assertThrows(() => rng.int(0), Error, "n must be an integer");
  assertThrows(() => rng.categorical([0, 0]), Error, "all weights are zero");
  assertThrows(() => rng.categorical([1, -1]), Error, "weight 1 is -1");
});

Deno.test("Rng.permutation is a permutation; normal has mean 0 and variance 1", () => {
  const rng = new Rng(3);
  const p = rng.permutation(100);
  assertEquals([...p].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  let m = 0;
  let v = 0;
  const n = 50000;
  for (let i = 0; i < n; i++) {
    const z = rng.normal();
    m += z;
    v += z * z;
  }
  assertAlmostEquals(m / n, 0, 0.02);
  assertAlmostEquals(v / n, 1, 0.03);
});

Deno.test("seedStreams: streams are independent of each other's seeds", () => {
  const a = seedStreams({ data: 1, init: 2, method: 3 });
  const b = seedStreams({ data: 1, init: 99, method: 3 });
  assertEquals(a.data.next(), b.data.next());
  assertEquals(a.method.next(), b.method.next());
  assertEquals(a.init.next() === b.init.next(), false);
});
