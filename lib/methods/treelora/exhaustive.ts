/**
 * Exhaustive task search: the L1 distance from the current M×D vector to
 * every stored task at every site, and the nearest task per site.
 *
 * This is what a search without the bandit and the tree would do every step:
 * n·M distances of length D, O(n·M·D) work, against the bandit's O(M·D)
 * distances for the pulled arms only (spec §3.6, Remark 1). It is the
 * reference of `experiments/bench/search.ts` and an oracle for diagnostics
 * (the best arm of each site, for regret).
 *
 * The table layout is that of the bandit statistics ({@link ArmTable}):
 * n×M row-major, entry `k·M + d` for task k and site d.
 *
 * @module
 */

import type { FloatArray } from "./signature.ts";

/**
 * The L1 distances between `current` (M×D) and every stored task's M×D
 * vector, site by site: `out[k·M + d] = ‖current[d] − stored[k][d]‖₁`,
 * where `[d]` is the site-d row `[d·D, (d+1)·D)`. Throws if there are no
 * stored tasks or a length is not M·D (M = current.length / dim).
 *
 * @example
 * ```ts
 * import { allSiteDistances } from "./exhaustive.ts";
 * const stored = [new Float64Array([1, 2, 3, 4]), new Float64Array([0, 0, 0, 0])];
 * allSiteDistances(new Float64Array([1, 1, 1, 1]), stored, { dim: 2 }); // [1, 4, 2, 2]
 * ```
 */
export function allSiteDistances(
  current: FloatArray,
  stored: readonly FloatArray[],
  options: { dim: number },
): Float64Array {
  const { dim } = options;
  if (!Number.isInteger(dim) || dim < 1) {
    throw new Error(`allSiteDistances: dim must be a positive integer, got ${dim}`);
  }
  const numSites = current.length / dim;
  if (!Number.isInteger(numSites) || numSites < 1) {
    throw new Error(
      `allSiteDistances: current has ${current.length} values, not a positive multiple of ` +
        `dim ${dim}`,
    );
  }
  if (stored.length === 0) throw new Error("allSiteDistances: no stored task vectors");
  stored.forEach((v, k) => {
    if (v.length !== current.length) {
      throw new Error(
        `allSiteDistances: stored vector of task ${k} has ${v.length} values, expected ` +
          `${current.length} (${numSites} sites × ${dim})`,
      );
    }
  });
  const out = new Float64Array(stored.length * numSites);
  for (let k = 0; k < stored.length; k++) {
    const row = stored[k];
    for (let d = 0; d < numSites; d++) {
      let sum = 0;
      const end = (d + 1) * dim;
      for (let i = d * dim; i < end; i++) sum += Math.abs(current[i] - row[i]);
      out[k * numSites + d] = sum;
    }
  }
  return out;
}

/**
 * The nearest task of each site in a table of {@link allSiteDistances}
 * (n×M row-major): `out[d] = argmin_k table[k·M + d]`, ties to the smaller k.
 *
 * @example
 * ```ts
 * import { nearestArms } from "./exhaustive.ts";
 * nearestArms(new Float64Array([1, 4, 2, 2]), { numSites: 2 }); // [0, 1]
 * ```
 */
export function nearestArms(
  distances: ArrayLike<number>,
  options: { numSites: number },
): Int32Array {
  const { numSites } = options;
  const numArms = distances.length / numSites;
  if (!Number.isInteger(numSites) || numSites < 1 || !Number.isInteger(numArms) || numArms < 1) {
    throw new Error(
      `nearestArms: ${distances.length} distances is not a positive multiple of ` +
        `${numSites} sites`,
    );
  }
  const out = new Int32Array(numSites);
  for (let d = 0; d < numSites; d++) {
    let best = 0;
    let bestValue = distances[d];
    for (let k = 1; k < numArms; k++) {
      const v = distances[k * numSites + d];
      if (v < bestValue) {
        best = k;
        bestValue = v;
      }
    }
    out[d] = best;
  }
  return out;
}
