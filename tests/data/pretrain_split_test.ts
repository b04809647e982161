import { assertEquals, assertThrows } from "@std/assert";
import {
  checkDisjoint,
  selectClasses,
  splitPretrainClasses,
} from "../../lib/data/pretrain_split.ts";
import { Rng } from "../../lib/random.ts";
import type { ImageSet } from "../../lib/data/task.ts";

Deno.test("splitPretrainClasses: the seeded permutation's first k pre-train, the rest stream, disjoint", () => {
  const s = splitPretrainClasses(10, { pretrainClasses: 4, seed: 3 });
  const order = Array.from(new Rng(3).permutation(10));
  assertEquals(s.pretrainClasses, order.slice(0, 4).sort((a, b) => a - b));
  assertEquals(s.streamClasses, order.slice(4).sort((a, b) => a - b));
  assertEquals([...s.pretrainClasses, ...s.streamClasses].sort((a, b) => a - b), [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
  ]);
  assertEquals(splitPretrainClasses(10, { pretrainClasses: 4, seed: 3 }), s);
  const big = splitPretrainClasses(100, { pretrainClasses: 50, seed: 0 });
  assertEquals([big.pretrainClasses.length, big.streamClasses.length], [50, 50]);
  assertThrows(
    () => splitPretrainClasses(10, { pretrainClasses: 10, seed: 0 }),
    RangeError,
    "[1, 9]",
  );
});

Deno.test("checkDisjoint refuses a constructed overlap, naming the classes", () => {
  checkDisjoint([0, 1, 2], [3, 4]);
  assertThrows(() => checkDisjoint([0, 1, 2], [2, 3]), Error, "class 2 is in both");
  assertThrows(() => checkDisjoint([5, 1, 2], [2, 5, 7]), Error, "classes 2, 5 are in both");
});

Deno.test("selectClasses keeps those classes' images, renumbered in the given order", () => {
  const size = 2;
  const per = 3 * size * size;
  const fine = Int32Array.of(0, 1, 2, 1, 3, 2);
  const set: ImageSet = {
    count: 6,
    size,
    pixels: Uint8Array.from({ length: 6 * per }, (_, i) => Math.floor(i / per)), // image i is all i
    fine,
    coarse: Int32Array.of(9, 8, 7, 8, 6, 7),
    fineNames: ["a", "b", "c", "d"],
    source: "toy",
  };
  const sub = selectClasses(set, [2, 1]);
  assertEquals(sub.count, 4);
  assertEquals(Array.from(sub.fine), [1, 0, 1, 0]); // images 1, 2, 3, 5: classes 1, 2, 1, 2
  assertEquals(Array.from(sub.coarse), [8, 7, 8, 7]);
  assertEquals([sub.pixels[0], sub.pixels[per], sub.pixels[2 * per], sub.pixels[3 * per]], [
    1,
    2,
    3,
    5,
  ]);
  assertEquals(sub.fineNames, ["c", "b"]);
  assertThrows(() => selectClasses(set, [1, 1]), Error, "class 1 given twice");
  assertThrows(() => selectClasses(set, [4]), Error, "no images of class 4");
});
