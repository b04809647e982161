/**
 * The TreeLoRA K-D tree over tasks (spec §4.4), rebuilt from scratch after
 * every task from the stored per-task vectors (M sites × D, row-major).
 *
 * Depth d of the tree splits on site d. At a node with tasks K and depth d:
 *
 * - leaf if d ≥ M or |K| ≤ 1;
 * - X = the site-d rows of the tasks' (differenced) vectors, m = their mean;
 * - `"dot_lower_median"` (code): s_i = ⟨X_i, m⟩, med = lower median of s,
 *   left = {s_i ≥ med}, right = {s_i < med};
 * - `"l1_lower_median"` (paper): s_i = ‖X_i − m‖₁, med = lower median,
 *   left = {s_i ≤ med}, right = {s_i > med};
 * - both keep the tasks' order; if a side is empty (ties, two tasks) the
 *   node falls back to left = the first ⌊|K|/2⌋ tasks, right = the rest.
 *
 * The lower median is torch.median's: the element at index ⌊(n − 1)/2⌋ of
 * the sorted scores. Arithmetic is float64 (the code's is float32), so exact
 * ties can differ from the code on real data.
 *
 * @module
 */

import type { SplitRule } from "./options.ts";
import type { FloatArray } from "./signature.ts";

/** One node of the task tree. */
export interface KDNode {
  /** Task indices in this subtree, in increasing order. */
  tasks: number[];
  /** Depth; an internal node at depth d splits on site d. */
  depth: number;
  /** True for a leaf (no children, no mean, no median). */
  isLeaf: boolean;
  /** Internal nodes: the mean of the tasks' site-`depth` rows (length D). */
  mean?: Float64Array;
  /** Internal nodes: the split threshold (the code's `median_similarity`). */
  median?: number;
  /** Internal nodes: tasks with a score on the "close" side of the median. */
  left?: KDNode;
  /** Internal nodes: the other tasks. */
  right?: KDNode;
}

/** Options of {@link buildTree}. */
export interface BuildTreeOptions {
  /** Number of sites M (maximum depth). */
  numSites: number;
  /** Values per site D. */
  dim: number;
  /** Split rule. */
  split: SplitRule;
  /** Split on first differences V_i − V_{i−1} (G_0 = V_0) instead of V_i. */
  useDifferences: boolean;
}

function lowerMedian(scores: readonly number[]): number {
  const sorted = [...scores].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function buildNode(
  rows: readonly Float64Array[],
  tasks: number[],
  depth: number,
  options: BuildTreeOptions,
): KDNode {
  const { numSites, dim, split } = options;
  if (depth >= numSites || tasks.length <= 1) return { tasks, depth, isLeaf: true };
  const offset = depth * dim;
  const mean = new Float64Array(dim);
  for (const k of tasks) {
    for (let i = 0; i < dim; i++) mean[i] += rows[k][offset + i];
  }
  for (let i = 0; i < dim; i++) mean[i] /= tasks.length;
  const scores = tasks.map((k) => {
    let s = 0;
    for (let i = 0; i < dim; i++) {
      const x = rows[k][offset + i];
      s += split === "dot_lower_median" ? x * mean[i] : Math.abs(x - mean[i]);
    }
    return s;
  });
  const median = lowerMedian(scores);
  const goesLeft = (s: number) => split === "dot_lower_median" ? s >= median : s <= median;
  let left = tasks.filter((_, i) => goesLeft(scores[i]));
  let right = tasks.filter((_, i) => !goesLeft(scores[i]));
  if (left.length === 0 || right.length === 0) {
    const half = Math.floor(tasks.length / 2);
    left = tasks.slice(0, half);
    right = tasks.slice(half);
  }
  return {
    tasks,
    depth,
    isLeaf: false,
    mean,
    median,
    left: buildNode(rows, left, depth + 1, options),
    right: buildNode(rows, right, depth + 1, options),
  };
}

/**
 * Build the task tree from the stored vectors of tasks 0..n−1 (one M×D
 * vector per task, in task order). Throws if there are no tasks or a vector
 * has the wrong length.
 *
 * @example
 * ```ts
 * import { buildTree } from "./kd_tree.ts";
 * const stored = [new Float64Array([1, 0]), new Float64Array([3, 1]), new Float64Array([0, 2])];
 * const root = buildTree(stored, { numSites: 1, dim: 2, split: "dot_lower_median", useDifferences: true });
 * root.tasks; // [0, 1, 2]
 * ```
 */
export function buildTree(stored: readonly FloatArray[], options: BuildTreeOptions): KDNode {
  const { numSites, dim } = options;
  if (stored.length === 0) throw new Error("buildTree: no stored task vectors");
  if (!Number.isInteger(numSites) || numSites < 1 || !Number.isInteger(dim) || dim < 1) {
    throw new Error(`buildTree: numSites and dim must be positive integers`);
  }
  stored.forEach((v, k) => {
    if (v.length !== numSites * dim) {
      throw new Error(
        `buildTree: task ${k} has ${v.length} values, expected ${numSites * dim} ` +
          `(${numSites} sites × ${dim})`,
      );
    }
  });
  const rows = stored.map((v, k) => {
    const row = Float64Array.from(v);
    if (options.useDifferences && k > 0) {
      const prev = stored[k - 1];
      for (let i = 0; i < row.length; i++) row[i] -= prev[i];
    }
    return row;
  });
  return buildNode(rows, stored.map((_, k) => k), 0, options);
}

/** JSON form of a {@link KDNode} (for `config.json` and results). */
export interface KDNodeJson {
  /** Task indices. */
  tasks: number[];
  /** Depth. */
  depth: number;
  /** Leaf flag. */
  isLeaf: boolean;
  /** Split threshold (internal nodes). */
  median?: number;
  /** Node mean as plain numbers (internal nodes, only with `includeMean`). */
  mean?: number[];
  /** Left child. */
  left?: KDNodeJson;
  /** Right child. */
  right?: KDNodeJson;
}

/**
 * A plain-JSON copy of a tree. Means are omitted unless `includeMean`
 * (they hold D numbers per node).
 *
 * @example
 * ```ts
 * import { buildTree, treeToJson } from "./kd_tree.ts";
 * const root = buildTree([new Float64Array([1]), new Float64Array([2])], {
 *   numSites: 1, dim: 1, split: "dot_lower_median", useDifferences: false,
 * });
 * JSON.stringify(treeToJson(root));
 * ```
 */
export function treeToJson(node: KDNode, options: { includeMean?: boolean } = {}): KDNodeJson {
  const out: KDNodeJson = { tasks: [...node.tasks], depth: node.depth, isLeaf: node.isLeaf };
  if (node.median !== undefined) out.median = node.median;
  if (options.includeMean && node.mean !== undefined) out.mean = Array.from(node.mean);
  if (node.left !== undefined) out.left = treeToJson(node.left, options);
  if (node.right !== undefined) out.right = treeToJson(node.right, options);
  return out;
}

/**
 * The root child (left or right subtree) that contains `task`, or undefined
 * if the root is a leaf or does not contain the task.
 *
 * @example
 * ```ts
 * import { buildTree, rootChildOf } from "./kd_tree.ts";
 * const root = buildTree([new Float64Array([1]), new Float64Array([2])], {
 *   numSites: 1, dim: 1, split: "dot_lower_median", useDifferences: false,
 * });
 * rootChildOf(root, 1)?.tasks; // [1]
 * ```
 */
export function rootChildOf(root: KDNode, task: number): KDNode | undefined {
  if (root.isLeaf || root.left === undefined || root.right === undefined) return undefined;
  if (root.left.tasks.includes(task)) return root.left;
  if (root.right.tasks.includes(task)) return root.right;
  return undefined;
}

/**
 * Insert task `task` (its vector `stored[task]`) into an existing tree by depth-first descent,
 * the paper's "insert it into the leaf of the nearest branch" (§3.3), instead of rebuilding:
 * at each internal node the new row's score against the node's stored mean (the node's split
 * rule) sends it left or right of the node's stored median; the leaf reached is rebuilt over
 * its tasks plus the new one, from its own depth. Internal nodes on the way keep their means
 * and medians (only their task lists grow). With `useDifferences`, the new row is
 * `stored[task] − stored[task − 1]`. Returns a new tree; `root` is not modified.
 *
 * @example
 * ```ts
 * import { buildTree, insertTask } from "./kd_tree.ts";
 * const opts = { numSites: 1, dim: 1, split: "l1_lower_median" as const, useDifferences: false };
 * const stored = [new Float64Array([0]), new Float64Array([10]), new Float64Array([1])];
 * const root = buildTree(stored.slice(0, 2), opts); // [0] | [1]
 * insertTask(root, stored, { ...opts, task: 2 }).left!.tasks; // [0, 2]
 * ```
 */
export function insertTask(
  root: KDNode,
  stored: readonly FloatArray[],
  options: BuildTreeOptions & { task: number },
): KDNode {
  const { numSites, dim, split, task } = options;
  const v = stored[task];
  if (!v || v.length !== numSites * dim) {
    throw new Error(`insertTask: task ${task} has no vector of ${numSites * dim} values`);
  }
  const rowOf = (k: number) => {
    const row = Float64Array.from(stored[k]);
    if (options.useDifferences && k > 0) {
      for (let i = 0; i < row.length; i++) row[i] -= stored[k - 1][i];
    }
    return row;
  };
  const rows: Float64Array[] = [];
  const collect = (n: KDNode) => n.tasks.forEach((k) => (rows[k] = rowOf(k)));
  const descend = (node: KDNode): KDNode => {
    if (node.isLeaf || node.mean === undefined || node.median === undefined) {
      collect(node);
      rows[task] = rowOf(task);
      return buildNode(rows, [...node.tasks, task].sort((a, b) => a - b), node.depth, options);
    }
    const offset = node.depth * dim;
    const x = rowOf(task);
    let s = 0;
    for (let i = 0; i < dim; i++) {
      s += split === "dot_lower_median"
        ? x[offset + i] * node.mean[i]
        : Math.abs(x[offset + i] - node.mean[i]);
    }
    const left = split === "dot_lower_median" ? s >= node.median : s <= node.median;
    return {
      ...node,
      tasks: [...node.tasks, task].sort((a, b) => a - b),
      left: left ? descend(node.left!) : node.left,
      right: left ? node.right : descend(node.right!),
    };
  };
  return descend(root);
}

/**
 * The two stored vectors closest in L1 distance (the pair to merge when storage exceeds a
 * budget, §3.3 / App. A.3), lowest indices first on ties.
 *
 * @example
 * ```ts
 * import { closestPair } from "./kd_tree.ts";
 * closestPair([new Float64Array([0]), new Float64Array([5]), new Float64Array([1])]); // [0, 2]
 * ```
 */
export function closestPair(stored: readonly FloatArray[]): [number, number] {
  if (stored.length < 2) throw new Error("closestPair: fewer than two stored vectors");
  let best: [number, number] = [0, 1];
  let bestDistance = Infinity;
  for (let i = 0; i < stored.length; i++) {
    for (let j = i + 1; j < stored.length; j++) {
      let d = 0;
      for (let k = 0; k < stored[i].length; k++) d += Math.abs(stored[i][k] - stored[j][k]);
      if (d < bestDistance) {
        bestDistance = d;
        best = [i, j];
      }
    }
  }
  return best;
}
