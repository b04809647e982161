import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import {
  cholesky,
  type ClassGaussian,
  classGaussians,
  createGaussianSampler,
} from "../../../lib/methods/hide_lora/gaussians.ts";

Deno.test("classGaussians: hand means, unbiased covariances plus ridge, full and diagonal", () => {
  // Class 3: rows (0, 0), (2, 2), (4, 1); class 1: one row (5, 5).
  const f = Float32Array.from([0, 0, 2, 2, 5, 5, 4, 1]);
  const full = classGaussians(f, [3, 3, 1, 3], { dim: 2, covariance: "full", ridge: 0.5 });
  assertEquals([...full.keys()], [1, 3]);
  const g = full.get(3)!;
  assertEquals([...g.mean], [2, 1]);
  // Centred rows (−2, −1), (0, 1), (2, 0): Σ = [[8, 2], [2, 2]] / 2 + 0.5·I.
  assertEquals([...g.cov], [4.5, 1, 1, 1.5]);
  assertEquals(g.count, 3);
  assertEquals([...full.get(1)!.cov], [0.5, 0, 0, 0.5]);
  const diag = classGaussians(f, [3, 3, 1, 3], { dim: 2, covariance: "diagonal", ridge: 0 });
  assertEquals([...diag.get(3)!.cov], [4, 1]);
  assertThrows(
    () => classGaussians(f, [3, 3], { dim: 2, covariance: "full", ridge: 0 }),
    Error,
    "width",
  );
});

Deno.test("createGaussianSampler: sample moments match the stored mean and covariance", async () => {
  await initBackend("cpu");
  const n = 20000;
  const classes: ClassGaussian[] = [
    { mean: Float32Array.from([1, -1]), cov: Float32Array.from([2, 0.8, 0.8, 1]), count: 9 },
    { mean: Float32Array.from([0, 3]), cov: Float32Array.from([0.25, 0, 0, 4]), count: 9 },
  ];
  const sampler = createGaussianSampler(classes, { dim: 2 });
  const x = sampler.sample(n, 7);
  assertEquals(x.shape, [2 * n, 2]);
  const v = await x.data();
  for (const [c, g] of classes.entries()) {
    const m = [0, 0];
    for (let i = c * n; i < (c + 1) * n; i++) for (let j = 0; j < 2; j++) m[j] += v[i * 2 + j] / n;
    const s = [0, 0, 0, 0];
    for (let i = c * n; i < (c + 1) * n; i++) {
      for (let j = 0; j < 2; j++) {
        for (let k = 0; k < 2; k++) {
          s[j * 2 + k] += (v[i * 2 + j] - m[j]) * (v[i * 2 + k] - m[k]) / (n - 1);
        }
      }
    }
    m.forEach((mj, j) => assertAlmostEquals(mj, g.mean[j], 0.05));
    s.forEach((sj, j) => assertAlmostEquals(sj, g.cov[j], 0.1));
  }
  // Same seed, same draws.
  const again = sampler.sample(n, 7);
  assertEquals(await again.data(), v);
  tf.dispose([x, again]);
  sampler.dispose();
  // A diagonal covariance: std √4 = 2 on the second coordinate.
  const d = createGaussianSampler([{
    mean: Float32Array.from([0, 0]),
    cov: Float32Array.from([0, 4]),
    count: 1,
  }], {
    dim: 2,
  });
  const y = await d.sample(n, 3).data();
  let s0 = 0;
  let s1 = 0;
  for (let i = 0; i < n; i++) {
    s0 += y[i * 2] ** 2 / n;
    s1 += y[i * 2 + 1] ** 2 / n;
  }
  assertEquals(s0, 0);
  assertAlmostEquals(s1, 4, 0.15);
  d.dispose();
});

Deno.test("cholesky: L·Lᵀ = A; a singular matrix gets a small jitter; an indefinite one throws", () => {
  assertEquals([...cholesky([4, 2, 2, 5], 2)], [2, 0, 1, 2]);
  // Rank 1 ([[1, 1], [1, 1]]): factored after the jitter, L·Lᵀ within it of A.
  const l = cholesky([1, 1, 1, 1], 2);
  assertAlmostEquals(l[0] * l[0], 1, 1e-6);
  assertAlmostEquals(l[2] * l[0], 1, 1e-6);
  assertAlmostEquals(l[2] * l[2] + l[3] * l[3], 1, 1e-6);
  assertThrows(() => cholesky([1, 0, 0, -1], 2), Error, "not positive semi-definite");
});
