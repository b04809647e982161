/**
 * The small quadratic programme of GEM (Lopez-Paz & Ranzato 2017), solved exactly in
 * float64 JS arrays.
 *
 * GEM's primal problem (paper eq. 10–11) projects the proposed gradient g (p values) onto
 * the cone of directions that do not increase the loss of any of t memories, whose
 * gradients are the rows of G (t×p):
 *
 * ```
 * min_z ½‖z − g‖²   s.t.  G z ≥ 0
 * ```
 *
 * Its dual (eq. 13) has only t variables. GEM's `project2cone2` solves it with two
 * additions — a margin (`memory_strength`) that lower-bounds the dual variables, and
 * (TreeLoRA's LLM port) a ridge `eps` that keeps the matrix positive definite:
 *
 * ```
 * min_v ½ vᵀ P v + cᵀ v   s.t.  v ≥ margin·1,      P = ½(GGᵀ + (GGᵀ)ᵀ) + eps·I,  c = G g
 * g̃ = Gᵀ v + g
 * ```
 *
 * (In quadprog's form `min ½vᵀPv − aᵀv s.t. Cᵀv ≥ b` this is a = q = −Gg, C = I,
 * b = margin·1, exactly the arguments of GEM's `project2cone2`.) Its KKT conditions are
 * v ≥ margin, w = P v + c = G g̃ + eps·v ≥ 0, (v − margin)ᵢ·wᵢ = 0: every memory gradient
 * satisfies ⟨Gᵢ, g̃⟩ ≥ −eps·vᵢ, with equality where vᵢ > margin. With margin = eps = 0
 * this is the exact projection of the primal problem; a margin > 0 adds at least
 * margin·Gᵢ of every memory gradient (GEM's bias toward backward transfer).
 *
 * Substituting u = v − margin·1 gives a strictly convex QP with u ≥ 0,
 * min ½uᵀPu − bᵀu with b = −(c + margin·P·1), solved by the Lawson–Hanson active-set
 * method in its Gram form (the NNLS iteration on P and b instead of A and y; Bro &
 * de Jong 1997): finite termination for a positive-definite P, exact up to the
 * Cholesky solves of the passive block.
 *
 * @module
 */

/** Solution of {@link solveBoundedQp}. */
export interface QpSolution {
  /** The minimiser v (t values, each ≥ the lower bound). */
  v: Float64Array;
  /** Indices whose bound is not active (vᵢ > lower), ascending. */
  free: number[];
  /** Outer (constraint-release) iterations of the active-set method. */
  iterations: number;
}

/** Result of {@link gemProject}. */
export interface GemProjection {
  /** The gradient to apply: g̃ = Gᵀv + g when projected, else a copy of g. */
  gradient: Float64Array;
  /** Inner products ⟨Gᵢ, g⟩ of the proposed gradient with each memory gradient. */
  dots: Float64Array;
  /** The dual solution v, or null when no inner product was negative. */
  v: Float64Array | null;
  /** Whether some ⟨Gᵢ, g⟩ < 0 (the QP was solved and g replaced). */
  projected: boolean;
}

/** GEM's QP constants: the dual lower bound and the ridge. */
export interface GemQpOptions {
  /** Lower bound of the dual variables (GEM's `memory_strength`); ≥ 0. Default 0.5. */
  margin?: number;
  /** Ridge added to the diagonal of GGᵀ; ≥ 0. Default 1e-3. */
  eps?: number;
}

function checkFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new Error(`${what}[${i}] is ${values[i]}; expected a finite number`);
    }
  }
}

function checkScalar(x: number, what: string): void {
  if (!(Number.isFinite(x) && x >= 0)) {
    throw new Error(`${what} must be a finite number >= 0, got ${x}`);
  }
}

/** Solve P_FF x = b_F by Cholesky (P_FF = LLᵀ); throws when P_FF is not positive definite. */
function solvePassive(p: Float64Array[], b: Float64Array, free: number[]): Float64Array {
  const k = free.length;
  const l = Array.from({ length: k }, () => new Float64Array(k));
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = p[free[i]][free[j]];
      for (let m = 0; m < j; m++) s -= l[i][m] * l[j][m];
      if (i === j) {
        if (!(s > 1e-14 * Math.abs(p[free[i]][free[i]]) && s > 0)) {
          throw new Error(
            `qp: the matrix restricted to constraints [${free.join(", ")}] is not positive ` +
              `definite (pivot ${s}); the memory gradients are linearly dependent: use eps > 0`,
          );
        }
        l[i][i] = Math.sqrt(s);
      } else {
        l[i][j] = s / l[j][j];
      }
    }
  }
  const y = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = b[free[i]];
    for (let m = 0; m < i; m++) s -= l[i][m] * y[m];
    y[i] = s / l[i][i];
  }
  const x = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = y[i];
    for (let m = i + 1; m < k; m++) s -= l[m][i] * x[m];
    x[i] = s / l[i][i];
  }
  return x;
}

/**
 * Minimise ½ vᵀ P v + qᵀ v subject to v ≥ lower·1, for a symmetric positive-definite
 * P (t×t, t up to ~50), by the Lawson–Hanson active-set method (see the module doc).
 * Throws for non-finite input, a non-square P, or a P that is not positive definite on
 * the constraints it frees.
 *
 * @example
 * ```ts
 * import { solveBoundedQp } from "./qp.ts";
 * // min ½(v₀² + v₁²) − v₀ + v₁ s.t. v ≥ 0  →  v = (1, 0)
 * const { v } = solveBoundedQp([[1, 0], [0, 1]], [-1, 1]);
 * // Float64Array [1, 0]
 * ```
 */
export function solveBoundedQp(
  p: readonly ArrayLike<number>[],
  q: ArrayLike<number>,
  options: { lower?: number; maxIterations?: number } = {},
): QpSolution {
  const t = q.length;
  const lower = options.lower ?? 0;
  if (!Number.isFinite(lower)) throw new Error(`qp: lower bound is ${lower}; expected finite`);
  if (p.length !== t) throw new Error(`qp: P has ${p.length} rows, q has ${t} values`);
  checkFinite(q, "qp: q");
  const pm = p.map((row, i) => {
    if (row.length !== t) throw new Error(`qp: row ${i} of P has ${row.length} values, want ${t}`);
    checkFinite(row, `qp: P[${i}]`);
    return Float64Array.from(row);
  });
  // u = v − lower ≥ 0:  min ½uᵀPu − bᵀu,  b = −(q + lower·P·1).
  const b = new Float64Array(t);
  for (let i = 0; i < t; i++) {
    let s = 0;
    for (let j = 0; j < t; j++) s += pm[i][j];
    b[i] = -(q[i] + lower * s);
  }
  let scale = 0;
  for (let i = 0; i < t; i++) scale = Math.max(scale, Math.abs(b[i]));
  const tol = 1e-13 * scale;
  const maxIterations = options.maxIterations ?? 3 * t + 10;
  const u = new Float64Array(t);
  const inF = new Array<boolean>(t).fill(false);
  const blocked = new Array<boolean>(t).fill(false);
  const w = Float64Array.from(b);
  let iterations = 0;
  for (;;) {
    let j = -1;
    for (let i = 0; i < t; i++) {
      if (!inF[i] && !blocked[i] && w[i] > tol && (j < 0 || w[i] > w[j])) j = i;
    }
    if (j < 0) break;
    if (++iterations > maxIterations) {
      throw new Error(`qp: no convergence in ${maxIterations} active-set iterations (t = ${t})`);
    }
    inF[j] = true;
    let first = true;
    for (;;) {
      const free = inF.flatMap((f, i) => (f ? [i] : []));
      const s = solvePassive(pm, b, free);
      if (s.every((x) => x > 0)) {
        u.fill(0);
        free.forEach((i, k) => (u[i] = s[k]));
        blocked.fill(false);
        break;
      }
      const jk = free.indexOf(j);
      if (first && s[jk] <= 0) {
        // Round-off: the entering index cannot move. Skip it until u changes.
        inF[j] = false;
        blocked[j] = true;
        break;
      }
      first = false;
      // Step from u toward s until the first passive value reaches 0; release it.
      let alpha = Infinity;
      let hit = -1;
      free.forEach((i, k) => {
        if (s[k] <= 0) {
          const a = u[i] / (u[i] - s[k]);
          if (a < alpha) [alpha, hit] = [a, i];
        }
      });
      free.forEach((i, k) => {
        u[i] += alpha * (s[k] - u[i]);
        if (i === hit || u[i] <= 0) {
          u[i] = 0;
          inF[i] = false;
        }
      });
      if (!inF.some((f) => f)) break;
    }
    for (let i = 0; i < t; i++) {
      let s = b[i];
      for (let k = 0; k < t; k++) s -= pm[i][k] * u[k];
      w[i] = s;
    }
  }
  const v = Float64Array.from(u, (x) => x + lower);
  return { v, free: inF.flatMap((f, i) => (f ? [i] : [])), iterations };
}

/**
 * The Gram matrix GGᵀ of t rows (float64 accumulation).
 *
 * @example
 * ```ts
 * import { gramMatrix } from "./qp.ts";
 * gramMatrix([[1, 2], [3, 4]]); // [[5, 11], [11, 25]] as Float64Arrays
 * ```
 */
export function gramMatrix(rows: readonly ArrayLike<number>[]): Float64Array[] {
  const t = rows.length;
  const out = Array.from({ length: t }, () => new Float64Array(t));
  for (let i = 0; i < t; i++) {
    if (rows[i].length !== rows[0].length) {
      throw new Error(`gramMatrix: row ${i} has ${rows[i].length} values, row 0 ${rows[0].length}`);
    }
    for (let j = 0; j <= i; j++) {
      const a = rows[i];
      const c = rows[j];
      let s = 0;
      for (let k = 0; k < a.length; k++) s += a[k] * c[k];
      out[i][j] = s;
      out[j][i] = s;
    }
  }
  return out;
}

/**
 * GEM's dual variables from the Gram matrix GGᵀ (t×t) and the inner products c = Gg:
 * argmin ½vᵀPv + cᵀv s.t. v ≥ margin·1 with P = ½(GGᵀ + (GGᵀ)ᵀ) + eps·I (module doc).
 * Lets a caller that keeps GGᵀ between steps skip recomputing it.
 *
 * @example
 * ```ts
 * import { gemDual } from "./qp.ts";
 * // One memory m with ‖m‖² = 4 and ⟨m, g⟩ = −2: v = max(margin, 2/(4 + eps)).
 * gemDual([[4]], [-2], { margin: 0, eps: 0 }); // Float64Array [0.5]
 * ```
 */
export function gemDual(
  gram: readonly ArrayLike<number>[],
  dots: ArrayLike<number>,
  options: GemQpOptions = {},
): Float64Array {
  const margin = options.margin ?? 0.5;
  const eps = options.eps ?? 1e-3;
  checkScalar(margin, "gem: margin");
  checkScalar(eps, "gem: eps");
  const t = dots.length;
  if (gram.length !== t) throw new Error(`gem: GGᵀ has ${gram.length} rows, Gg ${t} values`);
  const p = Array.from({ length: t }, (_, i) =>
    Float64Array.from({ length: t }, (_, j) => {
      if (gram[i].length !== t) {
        throw new Error(`gem: row ${i} of GGᵀ has ${gram[i].length} values`);
      }
      return 0.5 * (gram[i][j] + gram[j][i]) + (i === j ? eps : 0);
    }));
  return solveBoundedQp(p, dots, { lower: margin }).v;
}

/**
 * GEM's gradient projection: when the proposed gradient g has a negative inner product
 * with any memory gradient (a row of G), replace it by g̃ = Gᵀv + g with v from
 * {@link gemDual}; otherwise return g unchanged. Throws for non-finite input or rows of
 * the wrong length.
 *
 * @example
 * ```ts
 * import { gemProject } from "./qp.ts";
 * // m = (1, 0), g = (−1, 1): projection onto m·z ≥ 0 removes the conflicting part.
 * const r = gemProject([[1, 0]], [-1, 1], { margin: 0, eps: 0 });
 * // r.projected === true, r.gradient = Float64Array [0, 1]
 * ```
 */
export function gemProject(
  memories: readonly ArrayLike<number>[],
  gradient: ArrayLike<number>,
  options: GemQpOptions = {},
): GemProjection {
  const p = gradient.length;
  checkFinite(gradient, "gem: gradient");
  const dots = new Float64Array(memories.length);
  memories.forEach((m, i) => {
    if (m.length !== p) throw new Error(`gem: memory ${i} has ${m.length} values, gradient ${p}`);
    checkFinite(m, `gem: memory ${i}`);
    let s = 0;
    for (let k = 0; k < p; k++) s += m[k] * gradient[k];
    dots[i] = s;
  });
  const out = Float64Array.from(gradient);
  if (!dots.some((d) => d < 0)) return { gradient: out, dots, v: null, projected: false };
  const v = gemDual(gramMatrix(memories), dots, options);
  memories.forEach((m, i) => {
    for (let k = 0; k < p; k++) out[k] += v[i] * m[k];
  });
  return { gradient: out, dots, v, projected: true };
}
