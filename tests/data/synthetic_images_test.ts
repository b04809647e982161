import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { encodeCifar100, readCifar100 } from "../../lib/data/cifar100.ts";
import { generateSyntheticImages, writeSyntheticCifar } from "../../lib/data/synthetic_images.ts";
import type { ImageSet } from "../../lib/data/task.ts";

/** Per-class mean image (float, 3072 values) for every fine label 0..numFine-1. */
function classMeans(set: ImageSet, numFine: number): Float64Array[] {
  const means = Array.from({ length: numFine }, () => new Float64Array(3072));
  const counts = new Array(numFine).fill(0);
  for (let i = 0; i < set.count; i++) {
    const m = means[set.fine[i]];
    const px = set.pixels.subarray(i * 3072, (i + 1) * 3072);
    for (let p = 0; p < 3072; p++) m[p] += px[p];
    counts[set.fine[i]]++;
  }
  means.forEach((m, f) => m.forEach((v, p) => (m[p] = v / counts[f])));
  return means;
}

/** Root-mean-square pixel difference between two mean images. */
function rms(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let p = 0; p < a.length; p++) s += (a[p] - b[p]) ** 2;
  return Math.sqrt(s / a.length);
}

Deno.test("synthetic: shapes, labels (fine = 5·coarse + j), names and source", () => {
  const { train, test } = generateSyntheticImages({ seed: 3, trainPerClass: 4, testPerClass: 2 });
  assertEquals(train.count, 400);
  assertEquals(test.count, 200);
  assertEquals(train.size, 32);
  assertEquals(train.pixels.length, 400 * 3072);
  for (let i = 0; i < train.count; i++) {
    assertEquals(train.fine[i], Math.floor(i / 4));
    assertEquals(train.coarse[i], Math.floor(train.fine[i] / 5));
  }
  assertEquals(train.fineNames?.length, 100);
  assertEquals(train.coarseNames?.length, 20);
  assertEquals(train.fineNames?.[7], "cl_s01_f2");
  assertEquals(train.coarseNames?.[1], "cl_s01");
  assert(train.source.includes("universe=cl") && train.source.includes("split=train"));
});

Deno.test("synthetic: same seed gives identical bytes, a different seed different bytes", () => {
  const options = { seed: 11, trainPerClass: 3, testPerClass: 2 };
  const a = generateSyntheticImages(options);
  const b = generateSyntheticImages(options);
  assertEquals(encodeCifar100(a.train), encodeCifar100(b.train));
  assertEquals(encodeCifar100(a.test), encodeCifar100(b.test));
  const c = generateSyntheticImages({ ...options, seed: 12 });
  assertNotEquals(encodeCifar100(a.train), encodeCifar100(c.train));
  assertNotEquals(encodeCifar100(a.test), encodeCifar100(c.test));
  // Train and test images are different draws.
  assertNotEquals(a.train.pixels.subarray(0, 3072), a.test.pixels.subarray(0, 3072));
});

Deno.test("synthetic: the first n images of a class do not depend on images per class", () => {
  const small = generateSyntheticImages({ seed: 5, trainPerClass: 2, testPerClass: 1 });
  const large = generateSyntheticImages({ seed: 5, trainPerClass: 6, testPerClass: 3 });
  for (const f of [0, 42, 99]) {
    assertEquals(
      small.train.pixels.subarray(f * 2 * 3072, (f * 2 + 2) * 3072),
      large.train.pixels.subarray(f * 6 * 3072, (f * 6 + 2) * 3072),
    );
  }
});

Deno.test("synthetic: class means within a superclass are closer than across superclasses", () => {
  const { train } = generateSyntheticImages({ seed: 1, trainPerClass: 40, testPerClass: 0 });
  const means = classMeans(train, 100);
  let within = 0, withinN = 0, across = 0, acrossN = 0;
  // Per superclass too: its mean within-distance must be below its mean distance to the others.
  for (let s = 0; s < 20; s++) {
    let w = 0, wn = 0, x = 0, xn = 0;
    for (let j = 0; j < 5; j++) {
      const a = s * 5 + j;
      for (let b = 0; b < 100; b++) {
        if (b === a) continue;
        const d = rms(means[a], means[b]);
        if (Math.floor(b / 5) === s) (w += d), wn++;
        else (x += d), xn++;
      }
    }
    assert(w / wn < x / xn, `superclass ${s}: within ${w / wn} >= across ${x / xn}`);
    within += w, withinN += wn, across += x, acrossN += xn;
  }
  const ratio = within / withinN / (across / acrossN);
  assert(ratio < 0.5, `within/across mean distance ratio ${ratio.toFixed(3)} not < 0.5`);
});

Deno.test("synthetic: classes are distinguishable (each class mean is nearest to its own)", () => {
  // Nearest-class-mean on held-out images must beat chance (1%) by far, but the
  // task must not be solved by class means alone (it is not trivial).
  const { train, test } = generateSyntheticImages({ seed: 2, trainPerClass: 30, testPerClass: 5 });
  const means = classMeans(train, 100);
  let correct = 0;
  for (let i = 0; i < test.count; i++) {
    const x = Float64Array.from(test.pixels.subarray(i * 3072, (i + 1) * 3072));
    let best = -1, bestD = Infinity;
    means.forEach((m, f) => {
      const d = rms(m, x);
      if (d < bestD) (bestD = d), (best = f);
    });
    if (best === test.fine[i]) correct++;
  }
  const accuracy = correct / test.count;
  assert(accuracy > 0.1, `nearest-mean accuracy ${accuracy} too low: classes not learnable`);
  assert(accuracy < 0.95, `nearest-mean accuracy ${accuracy}: task is trivial`);
});

Deno.test("synthetic: the pretrain universe is a different family of classes", () => {
  const seed = 4;
  const cl = generateSyntheticImages({ seed, trainPerClass: 60, testPerClass: 60 });
  const pt = generateSyntheticImages({
    seed,
    trainPerClass: 60,
    testPerClass: 0,
    universe: "pretrain",
  });
  assertNotEquals(encodeCifar100(cl.train), encodeCifar100(pt.train));
  assertEquals(pt.train.fineNames?.[0], "pt_s00_f0");
  assert(pt.train.source.includes("universe=pretrain"));
  const clTrain = classMeans(cl.train, 100);
  const clTest = classMeans(cl.test, 100);
  const ptMeans = classMeans(pt.train, 100);
  // The same CL class estimated from two independent samples differs by
  // sampling noise only (≈ 4.6 grey levels RMS here, at most ≈ 7.5); every
  // pretrain class mean is farther than that from every CL class mean (≈ 12.9
  // at least), so no pretrain class reproduces a CL class.
  let maxSame = 0;
  for (let f = 0; f < 100; f++) maxSame = Math.max(maxSame, rms(clTrain[f], clTest[f]));
  let minCross = Infinity;
  for (let f = 0; f < 100; f++) {
    for (let g = 0; g < 100; g++) minCross = Math.min(minCross, rms(clTrain[f], ptMeans[g]));
  }
  assert(
    minCross > 1.3 * maxSame,
    `a pretrain class is as close to a CL class as sampling noise: ${minCross} vs ${maxSame}`,
  );
});

Deno.test("synthetic: numCoarse / finePerCoarse and option validation", () => {
  const { train } = generateSyntheticImages({
    seed: 0,
    trainPerClass: 1,
    testPerClass: 0,
    numCoarse: 3,
    finePerCoarse: 4,
  });
  assertEquals(train.count, 12);
  assertEquals(Array.from(train.coarse), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
  assertThrows(
    () =>
      generateSyntheticImages({
        seed: 0,
        trainPerClass: 1,
        testPerClass: 1,
        numCoarse: 30,
        finePerCoarse: 10,
      }),
    Error,
    "at most 256 fine classes",
  );
  assertThrows(
    () => generateSyntheticImages({ seed: 0.5, trainPerClass: 1, testPerClass: 1 }),
    Error,
    "seed must be an integer",
  );
  assertThrows(
    () => generateSyntheticImages({ seed: 0, trainPerClass: -1, testPerClass: 1 }),
    Error,
    "trainPerClass",
  );
});

Deno.test("synthetic: writeSyntheticCifar writes a directory that readCifar100 reads back exactly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-synth-test-" });
  try {
    const options = { seed: 9, trainPerClass: 3, testPerClass: 2 };
    const files = await writeSyntheticCifar(dir, options);
    assertEquals(files.trainPath, join(dir, "train.bin"));
    assertEquals(files.numFine, 100);
    assertEquals(files.numCoarse, 20);
    const direct = generateSyntheticImages(options);
    const train = await readCifar100(dir, { split: "train" });
    const test = await readCifar100(dir, { split: "test" });
    assertEquals(train.pixels, direct.train.pixels);
    assertEquals(train.fine, direct.train.fine);
    assertEquals(train.coarse, direct.train.coarse);
    assertEquals(test.pixels, direct.test.pixels);
    assertEquals(train.fineNames, direct.train.fineNames);
    assertEquals(train.coarseNames, direct.train.coarseNames);
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "synthetic.json")));
    assertEquals(meta.options.seed, 9);
    assertEquals(meta.options.universe, "cl");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
