import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "@std/path";
import {
  CIFAR100_RECORD_BYTES,
  encodeCifar100,
  parseCifar100,
  readCifar100,
  writeCifar100,
  writeLabelNames,
} from "../../lib/data/cifar100.ts";
import type { ImageSet } from "../../lib/data/task.ts";
import { withTempDir } from "../helpers.ts";

const TINY_DIR = "/work/shared/data/tinyimagenet100_32";
const CIFAR_DIR = "/work/shared/data/cifar100";

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Three hand-built images with distinct, position-dependent pixel values. */
function handBuiltSet(): ImageSet {
  const count = 3;
  const pixels = new Uint8Array(count * 3072);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + (i >> 10) * 13) & 255;
  return {
    count,
    size: 32,
    pixels,
    fine: Int32Array.of(0, 57, 99),
    coarse: Int32Array.of(19, 3, 0),
    source: "hand-built",
  };
}

Deno.test("encodeCifar100 lays out records: coarse, fine, R plane, G plane, B plane", () => {
  const set = handBuiltSet();
  const bytes = encodeCifar100(set);
  assertEquals(bytes.length, 3 * CIFAR100_RECORD_BYTES);
  for (let i = 0; i < 3; i++) {
    const at = i * CIFAR100_RECORD_BYTES;
    assertEquals(bytes[at], set.coarse[i]);
    assertEquals(bytes[at + 1], set.fine[i]);
    assertEquals(
      bytes.subarray(at + 2, at + CIFAR100_RECORD_BYTES),
      set.pixels.subarray(i * 3072, (i + 1) * 3072),
    );
  }
  // First G byte of record 1 is pixel plane 1 of image 1.
  assertEquals(bytes[CIFAR100_RECORD_BYTES + 2 + 1024], set.pixels[3072 + 1024]);
});

Deno.test("writeCifar100 → readCifar100 round-trips bytes, labels and names exactly", async () => {
  await withTempDir("treelora-data-test-", async (dir) => {
    const set = handBuiltSet();
    await writeCifar100(join(dir, "train.bin"), set);
    await writeCifar100(join(dir, "test.bin"), {
      ...set,
      count: 1,
      pixels: set.pixels.slice(0, 3072),
      fine: Int32Array.of(5),
      coarse: Int32Array.of(1),
    });
    const fineNames = Array.from({ length: 100 }, (_, i) => `fine_${i}`);
    const coarseNames = Array.from({ length: 20 }, (_, i) => `coarse_${i}`);
    await writeLabelNames(dir, { fineNames, coarseNames });

    const back = await readCifar100(dir, { split: "train" });
    assertEquals(back.count, 3);
    assertEquals(back.size, 32);
    assertEquals(back.pixels, set.pixels);
    assertEquals(back.fine, set.fine);
    assertEquals(back.coarse, set.coarse);
    assertEquals(back.fineNames, fineNames);
    assertEquals(back.coarseNames, coarseNames);
    assertEquals(back.source, join(dir, "train.bin"));
    assertEquals(encodeCifar100(back), await Deno.readFile(join(dir, "train.bin")));

    const test = await readCifar100(dir, { split: "test" });
    assertEquals(test.count, 1);
    assertEquals(test.fine, Int32Array.of(5));
    assertEquals(test.coarse, Int32Array.of(1));
  });
});

Deno.test("readCifar100 leaves names undefined when the name files are absent", async () => {
  await withTempDir("treelora-data-test-", async (dir) => {
    await writeCifar100(join(dir, "test.bin"), handBuiltSet());
    const set = await readCifar100(dir, { split: "test" });
    assertEquals(set.fineNames, undefined);
    assertEquals(set.coarseNames, undefined);
  });
});

Deno.test("parseCifar100 copies pixels (no aliasing of the input bytes)", () => {
  const bytes = encodeCifar100(handBuiltSet());
  const set = parseCifar100(bytes, { source: "memory" });
  bytes[2] ^= 0xff;
  assertEquals(set.pixels[0], handBuiltSet().pixels[0]);
});

Deno.test("readCifar100: missing file names the file and the expected layout", async () => {
  await withTempDir("treelora-data-test-", async (dir) => {
    const err = await assertRejects(() => readCifar100(dir, { split: "train" }), Error);
    const msg = (err as Error).message;
    assertStringIncludes(msg, join(dir, "train.bin"));
    assertStringIncludes(msg, "not found");
    assertStringIncludes(msg, "<dir>/train.bin");
    assertStringIncludes(msg, "<dir>/test.bin");
    assertStringIncludes(msg, "3074-byte records");
  });
});

Deno.test("readCifar100: truncated file reports its size and the remainder", async () => {
  await withTempDir("treelora-data-test-", async (dir) => {
    const bytes = encodeCifar100(handBuiltSet()).subarray(0, 2 * CIFAR100_RECORD_BYTES + 100);
    const path = join(dir, "train.bin");
    await Deno.writeFile(path, bytes);
    const err = await assertRejects(() => readCifar100(dir, { split: "train" }), Error);
    const msg = (err as Error).message;
    assertStringIncludes(msg, path);
    assertStringIncludes(msg, `size ${2 * 3074 + 100} bytes`);
    assertStringIncludes(msg, "not a multiple of the 3074-byte");
    assertStringIncludes(msg, "2 whole records + 100 bytes remainder");
  });
});

Deno.test("readCifar100: fine label 150 at record 2 is reported with record, byte, value and range", async () => {
  await withTempDir("treelora-data-test-", async (dir) => {
    const bytes = encodeCifar100(handBuiltSet());
    bytes[2 * CIFAR100_RECORD_BYTES + 1] = 150;
    const path = join(dir, "test.bin");
    await Deno.writeFile(path, bytes);
    const err = await assertRejects(() => readCifar100(dir, { split: "test" }), Error);
    const msg = (err as Error).message;
    assertStringIncludes(msg, path);
    assertStringIncludes(msg, "record 2");
    assertStringIncludes(msg, "byte 1 (fine label) is 150");
    assertStringIncludes(msg, "expected 0..99");
  });
});

Deno.test("parseCifar100: coarse label out of range names byte 0; numFine narrows the range", () => {
  const bytes = encodeCifar100(handBuiltSet());
  bytes[0] = 20;
  assertThrows(
    () => parseCifar100(bytes, { source: "mem.bin" }),
    Error,
    "mem.bin: record 0 (byte offset 0): byte 0 (coarse label) is 20; expected 0..19",
  );
  bytes[0] = 19;
  assertThrows(
    () => parseCifar100(bytes, { source: "mem.bin", numFine: 50 }),
    Error,
    "record 1 (byte offset 3074): byte 1 (fine label) is 57; expected 0..49",
  );
});

Deno.test("parseCifar100: an empty file is an error", () => {
  assertThrows(
    () => parseCifar100(new Uint8Array(0), { source: "empty.bin" }),
    Error,
    "empty.bin: contains no records",
  );
});

Deno.test("readCifar100: a names file with the wrong line count is an error naming it", async () => {
  await withTempDir("treelora-data-test-", async (dir) => {
    await writeCifar100(join(dir, "train.bin"), handBuiltSet());
    await Deno.writeTextFile(join(dir, "fine_label_names.txt"), "a\nb\nc\n");
    await assertRejects(
      () => readCifar100(dir, { split: "train" }),
      Error,
      `${join(dir, "fine_label_names.txt")}: has 3 lines; expected 100`,
    );
  });
});

Deno.test("encodeCifar100 rejects a wrong image size and out-of-byte labels", () => {
  assertThrows(() => encodeCifar100({ ...handBuiltSet(), size: 64 }), Error, "image size is 64");
  assertThrows(
    () => encodeCifar100({ ...handBuiltSet(), fine: Int32Array.of(0, 300, 1) }),
    Error,
    "record 1 has coarse label 3 and fine label 300",
  );
});

const tinyPresent = isFile(join(TINY_DIR, "train.bin")) && isFile(join(TINY_DIR, "test.bin"));
if (!tinyPresent) console.warn(`skipping real-data test: ${TINY_DIR}/{train,test}.bin not present`);

Deno.test({
  name: "real data: tinyimagenet100_32 reads as 100 classes, 80 train / 20 test per class",
  ignore: !tinyPresent,
  fn: async () => {
    const train = await readCifar100(TINY_DIR, { split: "train" });
    const test = await readCifar100(TINY_DIR, { split: "test" });
    assertEquals(train.count, 8000);
    assertEquals(test.count, 2000);
    assertEquals(train.fineNames?.length, 100);
    assertEquals(train.fineNames?.[0], "goldfish");
    assertEquals(train.coarseNames, undefined);
    for (const [set, perClass] of [[train, 80], [test, 20]] as const) {
      const counts = new Array(100).fill(0);
      for (let i = 0; i < set.count; i++) {
        const f = set.fine[i];
        assertEquals(f >= 0 && f <= 99, true);
        assertEquals(set.coarse[i], Math.floor(f / 5)); // README: coarse = fine // 5
        counts[f]++;
      }
      assertEquals(counts, new Array(100).fill(perClass));
    }
    // Real photos: pixel values are spread over the full range.
    let min = 255, max = 0;
    for (const v of train.pixels.subarray(0, 3072 * 80)) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    assertEquals(min < 20 && max > 235, true);
  },
});

const previewPath = join(CIFAR_DIR, "preview.bin");
const previewPresent = isFile(previewPath);
if (!previewPresent) console.warn(`skipping real-data test: ${previewPath} not present`);

Deno.test({
  name: "real data: cifar100/preview.bin holds 100 records with valid labels",
  ignore: !previewPresent,
  fn: async () => {
    const set = parseCifar100(await Deno.readFile(previewPath), { source: previewPath });
    assertEquals(set.count, 100);
    const coarseOf = new Map<number, number>();
    for (let i = 0; i < set.count; i++) {
      assertEquals(set.fine[i] >= 0 && set.fine[i] <= 99, true);
      assertEquals(set.coarse[i] >= 0 && set.coarse[i] <= 19, true);
      // A fine class always belongs to the same superclass.
      assertEquals(coarseOf.get(set.fine[i]) ?? set.coarse[i], set.coarse[i]);
      coarseOf.set(set.fine[i], set.coarse[i]);
    }
    assertEquals(coarseOf.size, 67); // README: 67 distinct fine classes
  },
});
