/**
 * Small float64 linear algebra for the projection baselines (OGD, InfLoRA):
 * Gram–Schmidt against an orthonormal basis and a symmetric eigensolver
 * (cyclic Jacobi; fine for the d ≤ a few hundred of the harness's sites).
 *
 * Vectors are plain arrays; a basis is a list of orthonormal rows.
 *
 * @module
 */

/**
 * Append to `basis` the part of each candidate orthogonal to it (modified
 * Gram–Schmidt, two passes), normalised. A candidate whose residual norm is
 * ≤ `tol` × its own norm (or zero) adds nothing. Returns how many were added.
 *
 * @example
 * ```ts
 * import { orthonormalizeInto } from "./subspace.ts";
 * const basis: Float64Array[] = [];
 * orthonormalizeInto(basis, [[1, 0], [1, 1], [2, 2]]); // 2: [1, 0] and [0, 1]
 * ```
 */
export function orthonormalizeInto(
  basis: Float64Array[],
  candidates: ArrayLike<number>[],
  options: { tol?: number } = {},
): number {
  const tol = options.tol ?? 1e-6;
  let added = 0;
  for (const c of candidates) {
    const v = Float64Array.from(c);
    const n0 = Math.sqrt(dot(v, v));
    if (!(n0 > 0)) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (const u of basis) {
        const p = dot(u, v);
        for (let i = 0; i < v.length; i++) v[i] -= p * u[i];
      }
    }
    const n = Math.sqrt(dot(v, v));
    if (!(n > tol * n0)) continue;
    for (let i = 0; i < v.length; i++) v[i] /= n;
    basis.push(v);
    added++;
  }
  return added;
}

/** Σ a_i·b_i in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Eigen-decomposition of a symmetric n×n matrix (row-major) by cyclic Jacobi
 * rotations: eigenvalues in descending order and the matching unit
 * eigenvectors as rows.
 *
 * @example
 * ```ts
 * import { symmetricEigen } from "./subspace.ts";
 * const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
 * // values [3, 1]; vectors[0] ≈ ±[0.707, 0.707]
 * ```
 */
export function symmetricEigen(
  m: ArrayLike<number>,
  n: number,
): { values: Float64Array; vectors: Float64Array[] } {
  if (m.length !== n * n) throw new Error(`symmetricEigen: ${m.length} values for ${n}×${n}`);
  const a = Float64Array.from(m);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const scale = Math.sqrt(dot(a, a)) || 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (Math.sqrt(off) <= 1e-15 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) <= 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y] - a[x * n + x]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = order.map((j) => Float64Array.from({ length: n }, (_, k) => v[k * n + j]));
  return { values, vectors };
}

/**
 * P·X·P for P = I − UᵀU (U: orthonormal rows), an n×n row-major matrix X.
 *
 * @example
 * ```ts
 * import { projectBothSides } from "./subspace.ts";
 * projectBothSides(Float64Array.from([1, 0, 0, 1]), [Float64Array.from([1, 0])], 2); // [0, 0, 0, 1]
 * ```
 */
export function projectBothSides(x: ArrayLike<number>, u: Float64Array[], n: number): Float64Array {
  const out = Float64Array.from(x);
  if (u.length === 0) return out;
  const project = (vec: Float64Array) => {
    for (const b of u) {
      const p = dot(b, vec);
      for (let i = 0; i < n; i++) vec[i] -= p * b[i];
    }
  };
  const row = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    row.set(out.subarray(r * n, (r + 1) * n));
    project(row);
    out.set(row, r * n);
  }
  const col = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    for (let r = 0; r < n; r++) col[r] = out[r * n + c];
    project(col);
    for (let r = 0; r < n; r++) out[r * n + c] = col[r];
  }
  return out;
}

/**
 * X·X for a symmetric n×n row-major X (= XᵀX).
 *
 * @example
 * ```ts
 * import { squareSymmetric } from "./subspace.ts";
 * squareSymmetric(Float64Array.from([2, 0, 0, 3]), 2); // [4, 0, 0, 9]
 * ```
 */
export function squareSymmetric(x: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += x[i * n + k] * x[k * n + j];
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}
