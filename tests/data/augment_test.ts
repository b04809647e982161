import { assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { augmentBatch, cropAndFlip } from "../../lib/data/augment.ts";
import { Rng } from "../../lib/random.ts";

// A 3×3 two-channel image: pixel (y, x) holds [10·y + x, −(10·y + x)].
const SIZE = 3;
const IMAGE = Float32Array.from({ length: SIZE * SIZE * 2 }, (_, i) => {
  const p = Math.floor(i / 2);
  const v = 10 * Math.floor(p / SIZE) + (p % SIZE);
  return i % 2 === 0 ? v : -v;
});

function channel0(a: Float32Array): number[][] {
  return Array.from(
    { length: SIZE },
    (_, y) => Array.from({ length: SIZE }, (_, x) => a[(y * SIZE + x) * 2]),
  );
}

Deno.test("cropAndFlip: a known crop offset shifts the image and fills zeros", () => {
  const opts = { size: SIZE, channels: 2, padding: 1 };
  // Offset (padding, padding) is the identity.
  assertEquals(cropAndFlip(IMAGE, { ...opts, dy: 1, dx: 1, flip: false }), IMAGE);
  // (0, 2): output (y, x) = input (y − 1, x + 1): one row down, one column left.
  assertEquals(channel0(cropAndFlip(IMAGE, { ...opts, dy: 0, dx: 2, flip: false })), [
    [0, 0, 0],
    [1, 2, 0],
    [11, 12, 0],
  ]);
  // The second channel moves with the first.
  const shifted = cropAndFlip(IMAGE, { ...opts, dy: 0, dx: 2, flip: false });
  assertEquals(shifted[(1 * SIZE + 0) * 2 + 1], -1);
});

Deno.test("cropAndFlip: a flip mirrors the columns; offsets outside the padding are errors", () => {
  assertEquals(
    channel0(cropAndFlip(IMAGE, { size: SIZE, channels: 2, padding: 0, dy: 0, dx: 0, flip: true })),
    [
      [2, 1, 0],
      [12, 11, 10],
      [22, 21, 20],
    ],
  );
  assertThrows(
    () => cropAndFlip(IMAGE, { size: SIZE, channels: 2, padding: 1, dy: 3, dx: 0, flip: false }),
    RangeError,
    "outside [0, 2]",
  );
  assertThrows(
    () =>
      cropAndFlip(IMAGE.subarray(1), {
        size: SIZE,
        channels: 2,
        padding: 1,
        dy: 0,
        dx: 0,
        flip: false,
      }),
    Error,
    "expected 3×3×2 values",
  );
});

Deno.test("augmentBatch: draws (dy, dx, flip) per image from the seed; the same seed, the same batch", () => {
  const batch = new Float32Array(4 * IMAGE.length);
  for (let i = 0; i < 4; i++) batch.set(IMAGE, i * IMAGE.length);
  const shape = [4, SIZE, SIZE, 2] as const;
  const a = augmentBatch(batch, shape, { padding: 1, flip: true }, new Rng(5));
  const b = augmentBatch(batch, shape, { padding: 1, flip: true }, new Rng(5));
  assertEquals(a, b);
  assertNotEquals(a, augmentBatch(batch, shape, { padding: 1, flip: true }, new Rng(6)));
  // Each image is the cropAndFlip of the draws the generator gives, in order dy, dx, flip.
  const rng = new Rng(5);
  for (let i = 0; i < 4; i++) {
    const dy = rng.int(3);
    const dx = rng.int(3);
    const flip = rng.next() < 0.5;
    const expected = cropAndFlip(IMAGE, { size: SIZE, channels: 2, padding: 1, dy, dx, flip });
    assertEquals(a.subarray(i * IMAGE.length, (i + 1) * IMAGE.length), expected, `image ${i}`);
  }
  // The input is untouched; padding 0 and no flip is the identity.
  assertEquals(batch.subarray(0, IMAGE.length), IMAGE);
  assertEquals(augmentBatch(batch, shape, { padding: 0, flip: false }, new Rng(1)), batch);
  assertThrows(
    () => augmentBatch(batch, shape, { padding: 3, flip: false }, new Rng(1)),
    RangeError,
    "[0, 3)",
  );
});
