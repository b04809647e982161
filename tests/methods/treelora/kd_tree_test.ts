import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  buildTree,
  closestPair,
  insertTask,
  type KDNode,
  rootChildOf,
  treeToJson,
} from "../../../lib/methods/treelora/kd_tree.ts";

/** Spec §4.4 worked example: M = 3, D = 2, 5 tasks; rows are (module0; module1; module2). */
const V = [
  [1, 0, 0, 1, 1, 1],
  [2, 1, 0, 2, 1, 0],
  [2, 3, 1, 2, 0, 0],
  [1, 3, 1, 4, 2, 1],
  [3, 3, 2, 4, 2, 2],
].map((v) => new Float64Array(v));

function assertArrayAlmost(actual: ArrayLike<number> | undefined, expected: number[], tol = 1e-12) {
  if (actual === undefined) throw new Error("missing array");
  assertEquals(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assertAlmostEquals(actual[i], expected[i], tol);
}

function child(node: KDNode, side: "left" | "right"): KDNode {
  const c = node[side];
  if (c === undefined) throw new Error(`node ${node.tasks} has no ${side} child`);
  return c;
}

Deno.test("code tree: spec §4.4 worked example, structure, means and medians", () => {
  const root = buildTree(V, {
    numSites: 3,
    dim: 2,
    split: "dot_lower_median",
    useDifferences: true,
  });
  // root, depth 0: mean (0.6, 0.6), scores [0.6, 1.2, 1.2, -0.6, 1.2], median 1.2
  assertEquals(root.tasks, [0, 1, 2, 3, 4]);
  assertEquals(root.isLeaf, false);
  assertArrayAlmost(root.mean, [0.6, 0.6]);
  assertAlmostEquals(root.median!, 1.2, 1e-12);
  const l = child(root, "left");
  const r = child(root, "right");
  assertEquals(l.tasks, [1, 2, 4]);
  assertEquals(r.tasks, [0, 3]);
  // d1 [1, 2, 4]: mean (2/3, 1/3), median 2/3 -> [2, 4] | [1]
  assertEquals(l.depth, 1);
  assertArrayAlmost(l.mean, [2 / 3, 1 / 3]);
  assertAlmostEquals(l.median!, 2 / 3, 1e-12);
  const ll = child(l, "left");
  const lr = child(l, "right");
  assertEquals(ll.tasks, [2, 4]);
  assertEquals(lr.tasks, [1]);
  assertEquals(lr.isLeaf, true);
  assertEquals(lr.depth, 2);
  // d2 [2, 4]: mean (-0.5, 0.5), scores [0.5, 0.5], median 0.5 -> degenerate -> [2] | [4]
  assertEquals(ll.depth, 2);
  assertArrayAlmost(ll.mean, [-0.5, 0.5]);
  assertAlmostEquals(ll.median!, 0.5, 1e-12);
  assertEquals(child(ll, "left").tasks, [2]);
  assertEquals(child(ll, "right").tasks, [4]);
  assertEquals(child(ll, "left").isLeaf, true);
  assertEquals(child(ll, "left").depth, 3);
  // d1 [0, 3]: mean (0, 1.5), scores [1.5, 3.0], median 1.5 -> degenerate -> [0] | [3]
  assertArrayAlmost(r.mean, [0, 1.5]);
  assertAlmostEquals(r.median!, 1.5, 1e-12);
  assertEquals(child(r, "left").tasks, [0]);
  assertEquals(child(r, "right").tasks, [3]);
  assertEquals(child(r, "left").depth, 2);
  // Leaves carry no mean/median.
  assertEquals(lr.mean, undefined);
  assertEquals(lr.median, undefined);
});

Deno.test("code tree: JSON form and rootChildOf", () => {
  const root = buildTree(V, {
    numSites: 3,
    dim: 2,
    split: "dot_lower_median",
    useDifferences: true,
  });
  const json = JSON.parse(JSON.stringify(treeToJson(root)));
  assertEquals(json.tasks, [0, 1, 2, 3, 4]);
  assertEquals(json.mean, undefined);
  assertEquals(json.left.left.right, { tasks: [4], depth: 3, isLeaf: true });
  assertEquals(json.right.left, { tasks: [0], depth: 2, isLeaf: true });
  assertEquals(treeToJson(root, { includeMean: true }).mean?.length, 2);
  assertEquals(rootChildOf(root, 4)?.tasks, [1, 2, 4]);
  assertEquals(rootChildOf(root, 3)?.tasks, [0, 3]);
  assertEquals(rootChildOf(root, 9), undefined);
  assertEquals(rootChildOf(child(root, "right").left!, 0), undefined);
});

Deno.test("tree: leaf when depth reaches M even with several tasks", () => {
  const stored = [[0], [1], [2], [3]].map((v) => new Float64Array(v));
  const root = buildTree(stored, {
    numSites: 1,
    dim: 1,
    split: "dot_lower_median",
    useDifferences: false,
  });
  // scores = x·1.5 = [0, 1.5, 3, 4.5]; lower median 1.5; >= goes left
  assertEquals(child(root, "left").tasks, [1, 2, 3]);
  assertEquals(child(root, "right").tasks, [0]);
  assertEquals(child(root, "left").isLeaf, true); // depth 1 = M
  const single = buildTree([new Float64Array([1, 2])], {
    numSites: 2,
    dim: 1,
    split: "dot_lower_median",
    useDifferences: true,
  });
  assertEquals(single, { tasks: [0], depth: 0, isLeaf: true });
});

Deno.test("paper tree: L1 distance to the mean, <= lower median goes left (hand-computed)", () => {
  // M = 2, D = 2, 4 tasks, no differences.
  // site 0 rows: t0 (0,0), t1 (2,0), t2 (0,4), t3 (6,0): mean (2,1)
  // L1 to mean: t0 2+1=3, t1 0+1=1, t2 2+3=5, t3 4+1=5 -> sorted [1,3,5,5], lower median 3
  // left (<= 3) [0, 1], right [2, 3]
  // site 1, [0, 1]: rows (1,1), (3,1): mean (2,1): distances [1, 1]; median 1 -> all left
  //   -> degenerate -> [0] | [1]
  // site 1, [2, 3]: rows (0,0), (0,3): mean (0,1.5): distances [1.5, 1.5] -> degenerate [2] | [3]
  const stored = [
    [0, 0, 1, 1],
    [2, 0, 3, 1],
    [0, 4, 0, 0],
    [6, 0, 0, 3],
  ].map((v) => new Float64Array(v));
  const root = buildTree(stored, {
    numSites: 2,
    dim: 2,
    split: "l1_lower_median",
    useDifferences: false,
  });
  assertArrayAlmost(root.mean, [2, 1]);
  assertAlmostEquals(root.median!, 3, 1e-12);
  const l = child(root, "left");
  const r = child(root, "right");
  assertEquals(l.tasks, [0, 1]);
  assertEquals(r.tasks, [2, 3]);
  assertAlmostEquals(l.median!, 1, 1e-12);
  assertAlmostEquals(r.median!, 1.5, 1e-12);
  assertArrayAlmost(r.mean, [0, 1.5]);
  assertEquals(child(l, "left").tasks, [0]);
  assertEquals(child(l, "right").tasks, [1]);
  assertEquals(child(r, "left").tasks, [2]);
  assertEquals(child(r, "right").tasks, [3]);
});

Deno.test("paper tree differs from the code tree on the same data", () => {
  // One site, D = 1, values [0, 1, 10]: dot with mean 11/3 -> [0, 11/3, 110/3], median 11/3,
  // >= left: [1, 2] | [0]. L1 to mean -> [11/3, 8/3, 19/3], median 11/3, <= left: [0, 1] | [2].
  const stored = [[0], [1], [10]].map((v) => new Float64Array(v));
  const base = { numSites: 1, dim: 1, useDifferences: false } as const;
  const code = buildTree(stored, { ...base, split: "dot_lower_median" });
  const paper = buildTree(stored, { ...base, split: "l1_lower_median" });
  assertEquals([child(code, "left").tasks, child(code, "right").tasks], [[1, 2], [0]]);
  assertEquals([child(paper, "left").tasks, child(paper, "right").tasks], [[0, 1], [2]]);
});

Deno.test("buildTree rejects empty input and wrong lengths", () => {
  const options = {
    numSites: 2,
    dim: 2,
    split: "dot_lower_median",
    useDifferences: true,
  } as const;
  assertThrows(() => buildTree([], options));
  assertThrows(() => buildTree([new Float64Array(4), new Float64Array(3)], options));
});

Deno.test("insertTask: depth-first descent by the stored medians, only the reached leaf is rebuilt", () => {
  const opts = { numSites: 2, dim: 1, split: "l1_lower_median" as const, useDifferences: false };
  // Site 0 values 0, 10, 1, 9 (then 0.5 inserted); site 1 values 0, 0, 5, 5.
  const stored = [[0, 0], [10, 0], [1, 5], [9, 5], [0.5, 3]].map((v) => new Float64Array(v));
  const root = buildTree(stored.slice(0, 4), opts);
  // Root (depth 0): mean 5, L1 scores [5, 5, 4, 4], lower median 4 → left [2, 3], right [0, 1].
  assertEquals([root.mean![0], root.median], [5, 4]);
  assertEquals([root.left!.tasks, root.right!.tasks], [[2, 3], [0, 1]]);
  const inserted = insertTask(root, stored, { ...opts, task: 4 });
  // Task 4 at site 0: |0.5 − 5| = 4.5 > 4 → right. The right node (depth 1, tasks 0, 1) is a
  // split node: site 1 mean 0, scores 0, 0, median 0; task 4: |3 − 0| = 3 > 0 → its right leaf.
  assertEquals(inserted.tasks, [0, 1, 2, 3, 4]);
  assertEquals([inserted.mean![0], inserted.median], [5, 4], "the root keeps its mean and median");
  assertEquals(inserted.left, root.left, "the other branch is untouched");
  assertEquals(inserted.right!.tasks, [0, 1, 4]);
  assertEquals(inserted.right!.mean![0], 0, "the right node keeps its mean");
  // The reached leaf held task 1 (depth 2 = M: a leaf of several tasks now).
  const leaf = inserted.right!.right!;
  assertEquals([leaf.isLeaf, leaf.tasks], [true, [1, 4]]);
  // A rebuild would instead recompute the root's mean over five tasks (4.1): insertion differs.
  assertEquals(buildTree(stored, opts).mean![0], 4.1);
  assertEquals(root.tasks, [0, 1, 2, 3], "the input tree is not modified");
  // L1 distances to task 4: 3.5 (task 0), 12.5, 2.5 (task 2), 10.5; among the rest ≥ 6.
  assertEquals(closestPair(stored), [2, 4]);
});
