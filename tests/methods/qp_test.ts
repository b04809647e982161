import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { gemDual, gemProject, gramMatrix, solveBoundedQp } from "../../lib/methods/qp.ts";
import { Rng } from "../../lib/random.ts";
import { assertArrayAlmostEquals } from "../helpers.ts";

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** Solve a small dense system by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((r, i) => [...r, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  const x = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}

/**
 * Reference: enumerate every free set S, fix v = lower off S, solve the stationarity
 * equations on S, keep the unique KKT point (P positive definite).
 */
function bruteForce(p: number[][], q: number[], lower: number): number[] {
  const t = q.length;
  for (let mask = 0; mask < 1 << t; mask++) {
    const s = [...Array(t).keys()].filter((i) => mask & (1 << i));
    const v = new Array(t).fill(lower);
    if (s.length > 0) {
      const a = s.map((i) => s.map((j) => p[i][j]));
      const b = s.map((i) =>
        -q[i] - [...Array(t).keys()].filter((j) => !s.includes(j))
          .reduce((acc, j) => acc + p[i][j] * lower, 0)
      );
      solve(a, b).forEach((x, k) => (v[s[k]] = x));
    }
    const w = p.map((row, i) => dot(row, v) + q[i]);
    const ok = v.every((x, i) => s.includes(i) ? x >= lower - 1e-12 : true) &&
      w.every((x, i) => s.includes(i) || x >= -1e-10);
    if (ok) return v;
  }
  throw new Error("no KKT point");
}

function randomRows(t: number, n: number, rng: Rng): Float64Array[] {
  return Array.from({ length: t }, () => Float64Array.from({ length: n }, () => rng.normal()));
}

Deno.test("qp: one violated constraint is the closed-form projection g − (g·m/m·m)·m", () => {
  const m = [3, -1, 2, 0.5];
  const g = [-1, 2, 0.25, 1];
  const c = dot(g, m); // −4.5
  assert(c < 0);
  const r = gemProject([m], g, { margin: 0, eps: 0 });
  assert(r.projected);
  const mm = dot(m, m);
  assertArrayAlmostEquals(r.gradient, g.map((x, i) => x - (c / mm) * m[i]), 1e-14);
  assertAlmostEquals(dot(r.gradient, m), 0, 1e-14);
  assertArrayAlmostEquals(r.v!, [-c / mm], 1e-15);
  // With a margin and a ridge: v = max(margin, −c/(m·m + eps)), g̃ = g + v·m.
  for (const [margin, eps] of [[0.05, 1e-3], [0.5, 1e-3], [0.2, 0.5]]) {
    const v = Math.max(margin, -c / (mm + eps));
    const s = gemProject([m], g, { margin, eps });
    assertArrayAlmostEquals(s.v!, [v], 1e-14);
    assertArrayAlmostEquals(s.gradient, g.map((x, i) => x + v * m[i]), 1e-13);
    // KKT: ⟨m, g̃⟩ ≥ −eps·v, with equality when the bound is inactive.
    const ip = dot(s.gradient, m);
    assert(ip >= -eps * v - 1e-12, `${ip}`);
    if (v > margin) assertAlmostEquals(ip, -eps * v, 1e-12);
  }
  // margin 0.5 is active here (−c/(m·m+eps) = 0.3) → g̃·m = c + 0.5·m·m > 0.
  assertAlmostEquals(gemProject([m], g, { margin: 0.5, eps: 1e-3 }).v![0], 0.5, 1e-15);
});

Deno.test("qp: two orthogonal memories are projected out independently; a satisfied one keeps v = margin", () => {
  const m1 = [2, 0, 0, 0];
  const m2 = [0, 0, 1, 1];
  const g = [-1, 3, -2, 0.5]; // g·m1 = −2, g·m2 = −1.5
  const r = gemProject([m1, m2], g, { margin: 0, eps: 0 });
  assertArrayAlmostEquals(r.v!, [2 / 4, 1.5 / 2], 1e-15);
  assertArrayAlmostEquals(r.gradient, [0, 3, -1.25, 1.25], 1e-14);
  assertAlmostEquals(dot(r.gradient, m1), 0, 1e-14);
  assertAlmostEquals(dot(r.gradient, m2), 0, 1e-14);
  // Only m1 violated: m2's dual sits at its bound (0, or the margin which it then adds).
  const h = [-1, 3, 2, 0.5];
  const s = gemProject([m1, m2], h, { margin: 0, eps: 0 });
  assertArrayAlmostEquals(s.v!, [0.5, 0], 1e-15);
  assertArrayAlmostEquals(s.gradient, [0, 3, 2, 0.5], 1e-14);
  const u = gemProject([m1, m2], h, { margin: 0.1, eps: 0 });
  assertArrayAlmostEquals(u.v!, [0.5, 0.1], 1e-15);
  assertArrayAlmostEquals(u.gradient, [0, 3, 2.1, 0.6], 1e-14);
});

Deno.test("qp: three memories, one violated but inactive at the solution (hand value)", () => {
  // Project g = (−1, −1, 1) onto {z₁ ≥ 0, z₂ ≥ 0, z₁ + 2z₂ + z₃ ≥ 0}: z = (0, 0, 1), v = (1, 1, 0).
  const mem = [[1, 0, 0], [0, 1, 0], [1, 2, 1]];
  const g = [-1, -1, 1];
  assert(dot(mem[2], g) < 0, "the third constraint is violated by g");
  const r = gemProject(mem, g, { margin: 0, eps: 0 });
  assertArrayAlmostEquals(r.v!, [1, 1, 0], 1e-14);
  assertArrayAlmostEquals(r.gradient, [0, 0, 1], 1e-14);
  assertArrayAlmostEquals(r.dots, [-1, -1, -2], 0);
});

Deno.test("qp: no violated constraint leaves g unchanged (no margin added)", () => {
  const g = [1, -2, 0.5];
  const r = gemProject([[1, 0, 0], [0, -1, 0], [0, 0, 0]], g, { margin: 0.5, eps: 1e-3 });
  assertEquals(r.projected, false);
  assertEquals(r.v, null);
  assertEquals(Array.from(r.gradient), g);
  assertEquals(Array.from(r.dots), [1, 2, 0]);
});

Deno.test("qp: KKT and the brute-force optimum on random cases (t = 1..8), margin and eps variants", () => {
  const rng = new Rng(11);
  let projected = 0;
  for (let trial = 0; trial < 120; trial++) {
    const t = 1 + (trial % 8);
    const n = t + rng.int(20);
    const mem = randomRows(t, n, rng);
    const g = Float64Array.from({ length: n }, () => rng.normal());
    const margin = [0, 0.05, 0.5][trial % 3];
    const eps = [0, 1e-3][(trial >> 2) % 2];
    const r = gemProject(mem, g, { margin, eps });
    if (!r.projected) {
      assert(r.dots.every((d) => d >= 0));
      continue;
    }
    projected++;
    const v = r.v!;
    const gram = gramMatrix(mem);
    const p = gram.map((row, i) => Array.from(row, (x, j) => x + (i === j ? eps : 0)));
    const scale = Math.max(1, ...r.dots.map(Math.abs));
    const w = p.map((row, i) => dot(row, v) + r.dots[i]);
    for (let i = 0; i < t; i++) {
      assert(v[i] >= margin - 1e-12, `v ≥ margin (${v[i]})`);
      assert(w[i] >= -1e-9 * scale, `dual feasibility w = ${w[i]}`);
      assert(Math.abs((v[i] - margin) * w[i]) <= 1e-9 * scale, "complementarity");
      // The constraint in terms of g̃: ⟨mᵢ, g̃⟩ = wᵢ − eps·vᵢ ≥ −eps·vᵢ.
      assert(dot(mem[i], r.gradient) >= -eps * v[i] - 1e-9 * scale);
    }
    assertArrayAlmostEquals(v, bruteForce(p, Array.from(r.dots), margin), 1e-8);
  }
  assert(projected > 60, `${projected} projected cases`);
});

Deno.test("qp: up to 50 constraints, rank-deficient memories with eps > 0, KKT holds", () => {
  const rng = new Rng(12);
  for (const [t, n] of [[50, 400], [50, 30], [20, 5]]) {
    const mem = randomRows(t, n, rng);
    const g = Float64Array.from({ length: n }, () => rng.normal());
    const eps = 1e-3;
    const r = gemProject(mem, g, { margin: 0.05, eps });
    assert(r.projected);
    const p = gramMatrix(mem).map((row, i) => Array.from(row, (x, j) => x + (i === j ? eps : 0)));
    const scale = Math.max(...p.map((row) => Math.max(...row.map(Math.abs)))) *
      Math.max(...r.v!);
    for (let i = 0; i < t; i++) {
      const w = dot(p[i], r.v!) + r.dots[i];
      assert(r.v![i] >= 0.05 - 1e-12);
      assert(w >= -1e-9 * scale, `t=${t} n=${n}: w[${i}] = ${w}`);
      assert(Math.abs((r.v![i] - 0.05) * w) <= 1e-9 * scale * Math.max(1, r.v![i]));
    }
  }
});

Deno.test("qp: solveBoundedQp with a lower bound; gemDual symmetrises and adds eps", () => {
  // min ½(v₀² + v₁²) − v₀ + v₁ s.t. v ≥ 0 → (1, 0); with v ≥ 2 → (2, 2).
  assertArrayAlmostEquals(solveBoundedQp([[1, 0], [0, 1]], [-1, 1]).v, [1, 0], 0);
  assertArrayAlmostEquals(solveBoundedQp([[1, 0], [0, 1]], [-1, 1], { lower: 2 }).v, [2, 2], 0);
  assertArrayAlmostEquals(
    solveBoundedQp([[1, 0], [0, 1]], [-1, 1], { lower: -3 }).v,
    [1, -1],
    1e-15,
  );
  // An asymmetric "Gram" input is symmetrised: [[4, 2], [0, 4]] → [[4, 1], [1, 4]].
  const v = gemDual([[4, 2], [0, 4]], [-5, -5], { margin: 0, eps: 0 });
  assertArrayAlmostEquals(v, [1, 1], 1e-15);
  assertArrayAlmostEquals(gemDual([[4]], [-2], { margin: 0, eps: 1 }), [0.4], 1e-15);
  assertEquals(solveBoundedQp([], []).v.length, 0);
});

Deno.test("qp: non-finite input, bad shapes and constants, a non-definite P are refused; dependent memories still solve", () => {
  assertThrows(() => gemProject([[1, 0]], [NaN, 1]), Error, "gem: gradient[0] is NaN");
  assertThrows(() => gemProject([[1, Infinity]], [-1, 1]), Error, "gem: memory 0[1] is Infinity");
  assertThrows(() => gemProject([[1, 0, 0]], [-1, 1]), Error, "memory 0 has 3 values");
  assertThrows(() => gemProject([[1, 0]], [-1, 1], { margin: -1 }), Error, "margin must be");
  assertThrows(() => gemProject([[1, 0]], [-1, 1], { eps: NaN }), Error, "eps must be");
  assertThrows(() => solveBoundedQp([[1]], [NaN]), Error, "qp: q[0] is NaN");
  assertThrows(() => solveBoundedQp([[1, 0]], [1, 1]), Error, "P has 1 rows, q has 2");
  assertThrows(() => solveBoundedQp([[-1]], [-1]), Error, "is not positive definite");
  // Linearly dependent memories without eps: the active set never needs the singular block.
  const r = gemProject([[1, 1], [2, 2]], [-1, -1], { margin: 0, eps: 0 });
  assert(r.projected);
  assertArrayAlmostEquals(r.gradient, [0, 0], 1e-15);
});
