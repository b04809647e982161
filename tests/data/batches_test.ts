import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { imageBatch, shuffledBatches } from "../../lib/data/batches.ts";
import { Rng } from "../../lib/random.ts";
import type { ImageSet } from "../../lib/data/task.ts";

/** Two images; image 1 has R(y,x) = x, G(y,x) = 8y, B = 255 except B(0,1) = 0. Image 0 is zeros. */
function twoImages(): ImageSet {
  const pixels = new Uint8Array(2 * 3072);
  const img = pixels.subarray(3072);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      img[y * 32 + x] = x;
      img[1024 + y * 32 + x] = 8 * y;
      img[2048 + y * 32 + x] = 255;
    }
  }
  img[2048 + 1] = 0;
  return {
    count: 2,
    size: 32,
    pixels,
    fine: Int32Array.of(3, 17),
    coarse: Int32Array.of(0, 3),
    source: "two-images",
  };
}

Deno.test("imageBatch: NHWC layout and (p/255 - mean)/std on a hand-computed image", () => {
  const set = twoImages();
  const { x, y, shape } = imageBatch(set, [1]);
  assertEquals(shape, [1, 32, 32, 3]);
  assertEquals(x.length, 32 * 32 * 3);
  assertEquals(Array.from(y), [17]);
  const at = (h: number, w: number, c: number) => x[(h * 32 + w) * 3 + c];
  // Pixel (0,0): R 0, G 0, B 255 → (0-0.5)/0.5 = -1, -1, +1.
  assertAlmostEquals(at(0, 0, 0), -1, 1e-6);
  assertAlmostEquals(at(0, 0, 1), -1, 1e-6);
  assertAlmostEquals(at(0, 0, 2), 1, 1e-6);
  // Pixel (0,1): R 1, G 0, B 0.
  assertAlmostEquals(at(0, 1, 0), (1 / 255 - 0.5) / 0.5, 1e-6);
  assertAlmostEquals(at(0, 1, 2), -1, 1e-6);
  // Pixel (5,7): R 7, G 40, B 255.
  assertAlmostEquals(at(5, 7, 0), (7 / 255 - 0.5) / 0.5, 1e-6);
  assertAlmostEquals(at(5, 7, 1), (40 / 255 - 0.5) / 0.5, 1e-6);
  assertAlmostEquals(at(5, 7, 2), 1, 1e-6);
  // Flat index of (h=5, w=7, c=1) is (5·32 + 7)·3 + 1 = 502.
  assertAlmostEquals(x[502], (40 / 255 - 0.5) / 0.5, 1e-6);
});

Deno.test("imageBatch: custom mean/std, batch order, labelToOutput", () => {
  const set = twoImages();
  const labelToOutput = new Int32Array(20).fill(-1);
  labelToOutput[3] = 1;
  labelToOutput[17] = 0;
  const mean = [0.1, 0.2, 0.3] as const;
  const std = [0.5, 0.25, 2] as const;
  const { x, y, shape } = imageBatch(set, Int32Array.of(1, 0), { mean, std, labelToOutput });
  assertEquals(shape, [2, 32, 32, 3]);
  assertEquals(Array.from(y), [0, 1]);
  const img1 = 32 * 32 * 3;
  assertAlmostEquals(x[(5 * 32 + 7) * 3 + 1], (40 / 255 - 0.2) / 0.25, 1e-6);
  assertAlmostEquals(x[2], (1 - 0.3) / 2, 1e-6);
  // Second image in the batch is image 0 (all zeros).
  assertAlmostEquals(x[img1 + 0], (0 - 0.1) / 0.5, 1e-6);
  assertAlmostEquals(x[img1 + 1], (0 - 0.2) / 0.25, 1e-6);
  assertAlmostEquals(x[img1 + 2], (0 - 0.3) / 2, 1e-6);
});

Deno.test("imageBatch: errors name the source, the index and the label", () => {
  const set = twoImages();
  assertThrows(
    () => imageBatch(set, [0, 2]),
    Error,
    "imageBatch(two-images): index 2 at batch position 1",
  );
  const map = new Int32Array(20).fill(-1);
  assertThrows(
    () => imageBatch(set, [1], { labelToOutput: map }),
    Error,
    "image 1 (batch position 0) has fine label 17",
  );
  assertThrows(
    () => imageBatch(set, [0], { std: [0.5, 0, 0.5] }),
    Error,
    "std must be 3 finite numbers > 0",
  );
});

Deno.test("shuffledBatches: a seeded permutation cut into batches, dropLast", () => {
  const indices = Int32Array.from({ length: 10 }, (_, i) => 100 + i);
  const batches = [...shuffledBatches(indices, 4, new Rng(3))];
  assertEquals(batches.map((b) => b.length), [4, 4, 2]);
  assert(batches.every((b) => b instanceof Int32Array));
  const flat = batches.flatMap((b) => Array.from(b));
  assertEquals([...flat].sort((a, b) => a - b), Array.from(indices));
  assertEquals(flat, new Rng(3).shuffle(Array.from(indices)));
  const again = [...shuffledBatches(indices, 4, new Rng(3))].flatMap((b) => Array.from(b));
  assertEquals(again, flat);
  const dropped = [...shuffledBatches(indices, 4, new Rng(3), { dropLast: true })];
  assertEquals(dropped.map((b) => b.length), [4, 4]);
  assertEquals(dropped.flatMap((b) => Array.from(b)), flat.slice(0, 8));
  assertThrows(
    () => shuffledBatches(indices, 0, new Rng(0)),
    Error,
    "batchSize must be an integer >= 1",
  );
});

Deno.test("shuffledBatches draws its shuffle at call time", () => {
  const rng = new Rng(8);
  const first = shuffledBatches([0, 1, 2, 3], 2, rng);
  const second = shuffledBatches([0, 1, 2, 3], 2, rng);
  const secondFlat = [...second].flatMap((b) => Array.from(b));
  const firstFlat = [...first].flatMap((b) => Array.from(b));
  const reference = new Rng(8);
  assertEquals(firstFlat, reference.shuffle([0, 1, 2, 3]));
  assertEquals(secondFlat, reference.shuffle([0, 1, 2, 3]));
});
