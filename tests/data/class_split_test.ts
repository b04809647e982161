import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { splitClassIncremental } from "../../lib/data/class_split.ts";
import { Rng } from "../../lib/random.ts";
import type { ImageSet } from "../../lib/data/task.ts";

/** A set with `perClass` images of each class (interleaved: class = i mod numClasses); no pixels needed. */
function labelledSet(numClasses: number, perClass: number, source: string): ImageSet {
  const count = numClasses * perClass;
  const fine = Int32Array.from({ length: count }, (_, i) => i % numClasses);
  return {
    count,
    size: 32,
    pixels: new Uint8Array(count * 3072),
    fine,
    coarse: fine.map((f) => Math.floor(f / 5)),
    source,
  };
}

Deno.test("split: natural order, 10 tasks of 10 classes, disjoint, correct counts", () => {
  const train = labelledSet(100, 8, "train-set");
  const test = labelledSet(100, 2, "test-set");
  const stream = splitClassIncremental(train, test, { numTasks: 10, orderSeed: null });
  assertEquals(stream.orderSeed, null);
  assertEquals(stream.classOrder, Array.from({ length: 100 }, (_, i) => i));
  assertEquals(stream.tasks.length, 10);
  assertEquals(stream.train, train);
  const seen = new Set<number>();
  stream.tasks.forEach((task, t) => {
    assertEquals(task.index, t);
    assertEquals(task.name, `task-${t}`);
    assertEquals(task.classes, Array.from({ length: 10 }, (_, i) => t * 10 + i));
    assertEquals(task.train.length, 80);
    assertEquals(task.test.length, 20);
    for (const c of task.classes) {
      assert(!seen.has(c), `class ${c} in two tasks`);
      seen.add(c);
    }
    const classes = new Set(task.classes);
    for (const i of task.train) assert(classes.has(train.fine[i]));
    for (const i of task.test) assert(classes.has(test.fine[i]));
    // Indices ascending (file order kept).
    for (let i = 1; i < task.train.length; i++) assert(task.train[i] > task.train[i - 1]);
  });
  assertEquals(seen.size, 100);
  const allTrain = stream.tasks.flatMap((t) => Array.from(t.train)).sort((a, b) => a - b);
  assertEquals(allTrain, Array.from({ length: 800 }, (_, i) => i));
  assertEquals(Array.from(stream.labelToOutput), Array.from({ length: 100 }, (_, i) => i));
});

Deno.test("split: seeded order is Rng(orderSeed).permutation, recorded and reproducible", () => {
  const train = labelledSet(100, 3, "train-set");
  const test = labelledSet(100, 1, "test-set");
  const a = splitClassIncremental(train, test, { orderSeed: 1993 });
  const b = splitClassIncremental(train, test, { orderSeed: 1993 });
  const c = splitClassIncremental(train, test, { orderSeed: 7 });
  assertEquals(a.orderSeed, 1993);
  assertEquals(a.classOrder, new Rng(1993).permutation(100));
  assertEquals(a.classOrder, b.classOrder);
  assertEquals(a.tasks.map((t) => Array.from(t.train)), b.tasks.map((t) => Array.from(t.train)));
  assertNotEquals(a.classOrder, c.classOrder);
  assertEquals([...a.classOrder].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  a.classOrder.forEach((label, out) => assertEquals(a.labelToOutput[label], out));
  a.tasks.forEach((task, t) => assertEquals(task.classes, a.classOrder.slice(t * 10, t * 10 + 10)));
  // Reproducible from the recorded seed alone.
  assertEquals(
    splitClassIncremental(train, test, { orderSeed: a.orderSeed }).classOrder,
    a.classOrder,
  );
});

Deno.test("split: classes subset, classesPerTask, and -1 for unused labels", () => {
  const train = labelledSet(20, 2, "train-set");
  const test = labelledSet(20, 1, "test-set");
  const classes = [10, 3, 7, 19];
  const natural = splitClassIncremental(train, test, {
    classes,
    classesPerTask: 2,
    orderSeed: null,
  });
  assertEquals(natural.classOrder, classes);
  assertEquals(natural.tasks.length, 2);
  assertEquals(natural.tasks[0].classes, [10, 3]);
  assertEquals(Array.from(natural.tasks[0].train), [3, 10, 23, 30]);
  assertEquals(natural.labelToOutput.length, 20);
  assertEquals(natural.labelToOutput[0], -1);
  assertEquals(natural.labelToOutput[19], 3);
  const seeded = splitClassIncremental(train, test, { classes, numTasks: 2, orderSeed: 5 });
  assertEquals(seeded.classOrder, new Rng(5).permutation(4).map((i) => classes[i]));
});

Deno.test("split: errors name the problem and the class", () => {
  const train = labelledSet(100, 2, "train-set");
  const test = labelledSet(100, 1, "test-set");
  assertThrows(
    () => splitClassIncremental(train, test, { numTasks: 7, orderSeed: null }),
    Error,
    "100 classes are not divisible into 7 tasks (100 mod 7 = 2)",
  );
  assertThrows(
    () => splitClassIncremental(train, test, { numTasks: 10, classesPerTask: 5, orderSeed: null }),
    Error,
    "100 classes cannot be cut into 10 tasks of 5 classes",
  );
  const testMissing = labelledSet(100, 1, "test-set");
  testMissing.fine[42] = 41; // class 42 loses its only test image
  assertThrows(
    () => splitClassIncremental(train, testMissing, { orderSeed: 3 }),
    Error,
    "class 42 (fine label) has no test images in test-set",
  );
  assertThrows(
    () =>
      splitClassIncremental(train, test, { classes: [1, 2, 1, 3], orderSeed: null, numTasks: 2 }),
    Error,
    "class 1 is listed twice",
  );
  assertThrows(
    () => splitClassIncremental(train, test, { classes: [1, 200], orderSeed: null, numTasks: 2 }),
    Error,
    "class 200 (fine label) has no train images in train-set",
  );
});
