import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertInstanceOf,
  assertThrows,
} from "@std/assert";
import { Rng } from "../../../lib/random.ts";
import {
  type ArmSelector,
  CodeBandit,
  codeBanditProbabilities,
  codeBanditScores,
  codeBanditSearchProbabilities,
  createArmSelector,
  PaperBandit,
  pullArms,
  RandomSelector,
  type SelectorState,
  treeBiasFactor,
} from "../../../lib/methods/treelora/bandit.ts";
import { buildTree, type KDNode } from "../../../lib/methods/treelora/kd_tree.ts";
import { resolveTreeLoraOptions } from "../../../lib/methods/treelora/options.ts";
import { assertArrayAlmostEquals } from "../../helpers.ts";

const CODE = { fixShift: false, banditPrefersSimilar: false } as const;

/** A selector state with the given tables (numSites M, n×M row-major). */
function stateOf(
  policy: SelectorState["policy"],
  numSites: number,
  S: number[],
  N: number[],
  rounds = 0,
): SelectorState {
  return { policy, numSites, numArms: S.length / numSites, rounds, S, N };
}

/** n dummy stored vectors (the arms); selection only reads how many there are. */
function dummyStored(n: number, size: number): Float64Array[] {
  return Array.from({ length: n }, () => new Float64Array(size));
}

Deno.test("code bandit: spec §4.5 numeric check (one module, two arms)", () => {
  const table = { numArms: 2, numSites: 1, S: [-10, -3], N: [2, 1] };
  // Before the shift: avgDist + w = [6.4747, 5.0856]; after +min: [11.5603, 10.1712]
  const scores = codeBanditScores(table, { t: 4, T: 100, ...CODE });
  assertArrayAlmostEquals(scores, [11.5603, 10.1712], 1e-4);
  const p = codeBanditProbabilities(table, { t: 4, T: 100, ...CODE });
  assertArrayAlmostEquals(p, [0.7311, 0.2689], 1e-4);
  // Arm 2 unpulled: S = [-10, 0], N = [2, 0]
  const q = codeBanditProbabilities(
    { numArms: 2, numSites: 1, S: [-10, 0], N: [2, 0] },
    { t: 4, T: 100, ...CODE },
  );
  assertArrayAlmostEquals(q, [0.2689, 0.7311], 1e-4);
  // Same through a CodeBandit restored to those statistics.
  const bandit = new CodeBandit({ numSites: 1, ...CODE, treeBias: true });
  bandit.restore(stateOf("code_softmax", 1, [-10, -3], [2, 1], 3));
  assertArrayAlmostEquals(bandit.probabilities({ t: 4, T: 100 }), [0.7311, 0.2689], 1e-4);
});

Deno.test("code bandit: banditPrefersSimilar favours the closer arm; the shift alone is inert", () => {
  const table = { numArms: 2, numSites: 1, S: [-10, -3], N: [2, 1] }; // avg distances 5 and 3
  const similar = codeBanditProbabilities(table, {
    t: 4,
    T: 100,
    fixShift: true,
    banditPrefersSimilar: true,
  });
  assertArrayAlmostEquals(similar, [0.2689, 0.7311], 1e-4);
  // Range normalisation is shift-invariant: fixShift changes nothing without a tree bias.
  const fixed = codeBanditProbabilities(table, {
    t: 4,
    T: 100,
    fixShift: true,
    banditPrefersSimilar: false,
  });
  assertArrayAlmostEquals(fixed, codeBanditProbabilities(table, { t: 4, T: 100, ...CODE }), 1e-9);
  // ...but it does with one and three arms (the multiplication is not shift-invariant; with two
  // arms the range normalisation always leaves a gap of 1).
  const three = { numArms: 3, numSites: 1, S: [-10, -3, -16], N: [2, 1, 2] };
  const bias = { tasks: [1], factor: 0.5 };
  const a = codeBanditProbabilities(three, { t: 4, T: 100, ...CODE, bias });
  const b = codeBanditProbabilities(three, {
    t: 4,
    T: 100,
    fixShift: true,
    banditPrefersSimilar: false,
    bias,
  });
  assert(Math.abs(a[0] - b[0]) > 1e-3);
});

Deno.test("code bandit: sampled frequencies match the probabilities", () => {
  const M = 2;
  const bandit = new CodeBandit({ numSites: M, ...CODE, treeBias: false });
  // 3 arms × 2 sites, all pulled
  bandit.restore(stateOf("code_softmax", M, [-4, -9, -6, -2, -12, -3], [2, 3, 3, 1, 4, 2], 6));
  const input = { t: 7, T: 50, stored: dummyStored(3, M), root: null, rng: new Rng(123) };
  const probs = bandit.probabilities({ t: 7, T: 50 });
  const draws = 20000;
  const counts = new Float64Array(3 * M);
  for (let i = 0; i < draws; i++) {
    const sel = bandit.select(input); // select does not change the statistics
    for (let d = 0; d < M; d++) counts[sel[d] * M + d] += 1;
  }
  for (let i = 0; i < counts.length; i++) {
    assertAlmostEquals(counts[i] / draws, probs[i], 0.015);
  }
  for (let d = 0; d < M; d++) {
    assertAlmostEquals(probs[d] + probs[M + d] + probs[2 * M + d], 1, 1e-12);
  }
});

/**
 * Tree over 3 tasks with M = 2, D = 1 (no differences): site 0 values [0, 1, 10] give
 * root -> left [1, 2] (internal, splits on site 1) | right [0] (leaf).
 */
function biasTree(site1: [number, number]): KDNode {
  const stored = [
    [0, 0],
    [1, site1[0]],
    [10, site1[1]],
  ].map((v) => new Float64Array(v));
  return buildTree(stored, {
    numSites: 2,
    dim: 1,
    split: "dot_lower_median",
    useDifferences: false,
  });
}

Deno.test("code bandit: root tree bias multiplies the chosen root child's tasks", () => {
  // left node [1, 2] at site 1: values 0.5, 0.7 -> mean 0.6, scores 0.3, 0.42, median 0.3
  const root = biasTree([0.5, 0.7]);
  assertEquals(root.left?.tasks, [1, 2]);
  assertEquals(root.right?.tasks, [0]);
  assertAlmostEquals(root.left!.median!, 0.3, 1e-12);
  assertAlmostEquals(treeBiasFactor(root.left!), 0.3, 1e-12);
  assertEquals(treeBiasFactor(root.right!), 1);
  assertEquals(treeBiasFactor(biasTree([1, 3]).left!), 1.5); // median 2 is capped at 1.5

  const M = 2;
  const bandit = new CodeBandit({ numSites: M, ...CODE, treeBias: true });
  const stored = dummyStored(3, M);
  // Mean distances (site 0, site 1): arm 0 (2, 2), arm 1 (30, 30), arm 2 (5, 1). Arm 1's total
  // score is larger by ~56, so the first draw (softmax of the totals) is arm 1.
  bandit.restore(stateOf("code_softmax", M, [-4, -4, -60, -60, -10, -2], [2, 2, 2, 2, 2, 2], 6));
  const rng = new Rng(5);
  const sel = bandit.select({ t: 3, T: 20, stored, root, rng });
  assertEquals(sel.length, M);
  assertEquals(bandit.lastBias?.first, 1);
  assertEquals(bandit.lastBias?.tasks, [1, 2]);
  assertAlmostEquals(bandit.lastBias!.factor, 0.3, 1e-12);
  // Frequencies follow the biased probabilities, not the unbiased ones.
  const biased = bandit.probabilities({ t: 3, T: 20, bias: { tasks: [1, 2], factor: 0.3 } });
  const plain = bandit.probabilities({ t: 3, T: 20 });
  assertAlmostEquals(plain[0], 0.2112, 1e-4);
  assertAlmostEquals(biased[0], 0.2956, 1e-4); // arms 1, 2 scaled by 0.3 -> arm 0 gains
  const counts = new Float64Array(3 * M);
  const draws = 12000;
  for (let i = 0; i < draws; i++) {
    const s = bandit.select({ t: 3, T: 20, stored, root, rng });
    for (let d = 0; d < M; d++) counts[s[d] * M + d] += 1;
  }
  for (let i = 0; i < counts.length; i++) assertAlmostEquals(counts[i] / draws, biased[i], 0.015);

  // Arm 0 far instead: the first draw picks arm 0, whose root child is a leaf: factor 1.
  bandit.restore(stateOf("code_softmax", M, [-60, -60, -4, -4, -10, -2], [2, 2, 2, 2, 2, 2], 6));
  bandit.select({ t: 3, T: 20, stored, root, rng });
  assertEquals(bandit.lastBias, { first: 0, tasks: [0], factor: 1 });
  // No bias when the switch is off or the root is a leaf.
  const off = new CodeBandit({ numSites: M, ...CODE, treeBias: false });
  off.select({ t: 0, T: 20, stored, root, rng });
  assertEquals(off.lastBias, null);
});

/**
 * Four tasks, M = 2: root [0,1,2,3] -> left [0,1] -> [0] | [1]; right [2,3] -> [2] | [3]
 * (the L1 tree of the kd_tree test).
 */
function fourTaskTree(): KDNode {
  const stored = [
    [0, 0, 1, 1],
    [2, 0, 3, 1],
    [0, 4, 0, 0],
    [6, 0, 0, 3],
  ].map((v) => new Float64Array(v));
  return buildTree(stored, {
    numSites: 2,
    dim: 2,
    split: "l1_lower_median",
    useDifferences: false,
  });
}

Deno.test("paper bandit: hierarchical LCB descends to the hand-computed leaf", () => {
  const root = fourTaskTree();
  const bandit = new PaperBandit({ numSites: 2 });
  // rounds 8 -> t = 9. Per arm (site 0 | site 1): n and distance sums.
  // site 0: arm0 n1 Σ1, arm1 n5 Σ25, arm2 n1 Σ2, arm3 n1 Σ2.5
  // site 1: arm0 n3 Σ3, arm1 n3 Σ3, arm2 n2 Σ2, arm3 unpulled
  const N = [1, 3, 5, 3, 1, 2, 1, 0];
  const S = [-1, -3, -25, -3, -2, -2, -2.5, 0];
  bandit.restore(stateOf("paper_lcb", 2, S, N, 8));
  const ln9 = Math.log(9);
  const lcb = (mu: number, n: number) => mu - 2 * Math.sqrt(ln9 / n);
  // Site 0 arms: [-1.96461, 3.67419, -0.96461, -0.46461]
  assertAlmostEquals(bandit.armBound(0, 0), lcb(1, 1), 1e-12);
  assertAlmostEquals(bandit.armBound(0, 0), -1.96461, 1e-4);
  assertAlmostEquals(bandit.armBound(1, 0), 3.67419, 1e-4);
  // left [0,1]: max(min(-1.96461, 3.67419), own(μ 26/6, n 6) = 3.12305) = 3.12305
  assertAlmostEquals(bandit.nodeBound(root.left!, 0), lcb(26 / 6, 6), 1e-12);
  assertAlmostEquals(bandit.nodeBound(root.left!, 0), 3.1230, 1e-4);
  // right [2,3]: max(-0.96461, own(μ 2.25, n 2) = 0.15371) = 0.15371
  assertAlmostEquals(bandit.nodeBound(root.right!, 0), 0.15371, 1e-4);
  // Descent: right (0.154 < 3.123), then arm 2 (-0.965 < -0.465). A flat argmin would take arm 0.
  assertEquals(bandit.choose(root, 0), 2);
  assertEquals(bandit.choose(null, 0), 0);
  // Site 1: arm 3 unpulled -> right subtree is -inf -> arm 3.
  assertEquals(bandit.nodeBound(root.right!, 1), -Infinity);
  assertAlmostEquals(bandit.nodeBound(root.left!, 1), lcb(1, 6), 1e-12);
  const sel = bandit.select({ t: 0, T: 1, stored: dummyStored(4, 4), root, rng: new Rng(0) });
  assertEquals(Array.from(sel), [2, 3]);
  // δ lowers the own bound: with δ = 10 the left node's LCB is its best child's.
  const withDelta = new PaperBandit({ numSites: 2, delta: 10 });
  withDelta.restore(stateOf("paper_lcb", 2, S, N, 8));
  assertAlmostEquals(withDelta.nodeBound(root.left!, 0), lcb(1, 1), 1e-12);
  assertEquals(withDelta.choose(root, 0), 0);
});

Deno.test("paper bandit: every arm once per site first; δ decides how far the pooled bound binds", () => {
  const root = fourTaskTree(); // [0, 1] | [2, 3]
  // Stored rows (site 0 | site 1). Distances to current (1, 1 | 1, 1):
  // site 0: arms [2, 8, 16, 0] -> best arm 3, but its sibling arm 2 is the worst;
  // site 1: arms [16, 0, 8, 16] -> best arm 1.
  const stored = [
    [0, 0, 9, 9],
    [5, 5, 1, 1],
    [9, 9, 5, 5],
    [1, 1, 9, 9],
  ].map((v) => new Float64Array(v));
  const current = new Float64Array([1, 1, 1, 1]);
  const run = (delta: number) => {
    const bandit = new PaperBandit({ numSites: 2, delta });
    const rng = new Rng(0);
    const picks: number[][] = [];
    for (let i = 0; i < 300; i++) {
      picks.push(
        Array.from(pullArms(bandit, { t: i, T: 1, stored, root, rng, current }).selection),
      );
    }
    return { picks, N: Array.from(bandit.stats.N) };
  };
  const strict = run(0);
  assertEquals(strict.picks.slice(0, 4), [[0, 0], [1, 1], [2, 2], [3, 3]]);
  // δ = 0: the right subtree's pooled bound (mean of 16 and 0) stays above the left's, so site 0
  // keeps exploiting arm 0, the best arm of the left subtree (Eq. 2's own bound binds).
  assertEquals(strict.picks[299], [0, 1]);
  // A δ of the order of the within-node spread lets the descent reach the best arm 3.
  const loose = run(5);
  assertEquals(loose.picks.slice(0, 4), [[0, 0], [1, 1], [2, 2], [3, 3]]);
  assertEquals(loose.picks[299], [3, 1]);
  assert(loose.N[3 * 2 + 0] > 250);
  assert(loose.N[1 * 2 + 1] > 250);
});

Deno.test("random selector: uniform per site, reproducible from the seed", () => {
  const sel = new RandomSelector({ numSites: 3 });
  const stored = dummyStored(4, 3);
  const counts = new Float64Array(4);
  const draws = 8000;
  for (let i = 0; i < draws; i++) {
    const s = sel.select({ t: 0, T: 1, stored, root: null, rng: new Rng(i) });
    counts[s[0]]++;
  }
  for (const c of counts) assertAlmostEquals(c / draws, 0.25, 0.02);
  const a = new RandomSelector({ numSites: 3 }).select({
    t: 0,
    T: 1,
    stored,
    root: null,
    rng: new Rng(9),
  });
  const b = new RandomSelector({ numSites: 3 }).select({
    t: 0,
    T: 1,
    stored,
    root: null,
    rng: new Rng(9),
  });
  assertEquals(Array.from(a), Array.from(b));
});

Deno.test("selectors: state round trip through JSON continues identically", () => {
  const root = fourTaskTree();
  const stored = [
    [0, 0, 9, 9],
    [5, 5, 1, 1],
    [9, 9, 5, 5],
    [1, 1, 9, 9],
  ].map((v) => new Float64Array(v));
  const current = new Float64Array([1, 2, 1, 3]);
  const makers: (() => ArmSelector)[] = [
    () => new CodeBandit({ numSites: 2, ...CODE, treeBias: true }),
    () => new PaperBandit({ numSites: 2 }),
    () => new RandomSelector({ numSites: 2 }),
  ];
  for (const make of makers) {
    const a = make();
    const rngA = new Rng(42);
    for (let i = 0; i < 7; i++) pullArms(a, { t: i, T: 20, stored, root, rng: rngA, current });
    const json = JSON.stringify(a.state());
    const b = make();
    b.restore(JSON.parse(json));
    assertEquals(b.state(), a.state());
    const rngB = new Rng(0);
    rngB.restore(rngA.state());
    for (let i = 7; i < 12; i++) {
      const x = pullArms(a, { t: i, T: 20, stored, root, rng: rngA, current });
      const y = pullArms(b, { t: i, T: 20, stored, root, rng: rngB, current });
      assertEquals(Array.from(y.selection), Array.from(x.selection));
    }
    assertEquals(b.state(), a.state());
    // reset forgets everything
    b.reset();
    assertEquals(b.state().numArms, 0);
    assertEquals(b.state().S, []);
  }
  const code = new CodeBandit({ numSites: 2, ...CODE, treeBias: true });
  assertThrows(() => code.restore(new PaperBandit({ numSites: 2 }).state()));
  assertThrows(() => code.restore(stateOf("code_softmax", 3, [0, 0, 0], [0, 0, 0])));
});

Deno.test("selectors: arm count is fixed until reset; tree must match the stored tasks", () => {
  const bandit = new CodeBandit({ numSites: 1, ...CODE, treeBias: true });
  const rng = new Rng(1);
  bandit.select({ t: 0, T: 5, stored: dummyStored(2, 1), root: null, rng });
  assertThrows(() => bandit.select({ t: 1, T: 5, stored: dummyStored(3, 1), root: null, rng }));
  bandit.reset();
  bandit.select({ t: 0, T: 5, stored: dummyStored(3, 1), root: null, rng });
  const twoTaskTree = buildTree(dummyStored(2, 1), {
    numSites: 1,
    dim: 1,
    split: "dot_lower_median",
    useDifferences: true,
  });
  assertThrows(() =>
    bandit.select({ t: 0, T: 5, stored: dummyStored(3, 1), root: twoTaskTree, rng })
  );
  assertThrows(() => bandit.update(new Int32Array([5]), [1]));
  assertThrows(() => bandit.update(new Int32Array([0]), [-1]));
});

Deno.test("createArmSelector follows the resolved options", () => {
  const code = createArmSelector(resolveTreeLoraOptions({}, { track: "lm" }), { numSites: 4 });
  if (!(code instanceof CodeBandit)) throw new Error("expected a CodeBandit");
  assertEquals(code.options, {
    numSites: 4,
    fixShift: false,
    treeBias: true,
    banditPrefersSimilar: false,
  });
  const paper = createArmSelector(
    resolveTreeLoraOptions({ mode: "paper", delta: 0.2 }, {
      track: "vit",
    }),
    { numSites: 5 },
  );
  if (!(paper instanceof PaperBandit)) throw new Error("expected a PaperBandit");
  assertEquals(paper.delta, 0.2);
  const random = createArmSelector(
    resolveTreeLoraOptions({ selection: "random" }, {
      track: "lm",
    }),
    { numSites: 2 },
  );
  assertInstanceOf(random, RandomSelector);
  const none = createArmSelector(
    resolveTreeLoraOptions({ selection: "none", regularizer: "none" }, { track: "lm" }),
    { numSites: 2 },
  );
  assertEquals(none, null);
});

Deno.test("paper bandit, the paper-mode default δ (1, γ 0.5, relative): pulls concentrate on the best leaf as t grows", () => {
  const root = fourTaskTree(); // [0, 1] | [2, 3]
  // The case above: site 0's best arm 3 sits beside the worst arm 2; site 1's best is arm 1.
  const stored = [
    [0, 0, 9, 9],
    [5, 5, 1, 1],
    [9, 9, 5, 5],
    [1, 1, 9, 9],
  ].map((v) => new Float64Array(v));
  const current = new Float64Array([1, 1, 1, 1]);
  const options = resolveTreeLoraOptions({ mode: "paper" }, { track: "vit" });
  const bandit = createArmSelector(options, { numSites: 2 });
  if (!(bandit instanceof PaperBandit)) throw new Error("expected a PaperBandit");
  assertEquals([bandit.delta, bandit.gamma, bandit.deltaScale], [1, 0.5, "relative"]);
  const rng = new Rng(0);
  const windows = [0, 0, 0, 0];
  const windowsSite1 = [0, 0, 0, 0];
  for (let i = 0; i < 800; i++) {
    const { selection } = pullArms(bandit, { t: i, T: 1, stored, root, rng, current });
    if (selection[0] === 3) windows[Math.floor(i / 200)]++;
    if (selection[1] === 1) windowsSite1[Math.floor(i / 200)]++;
  }
  // Share of the best arm per window of 200 rounds: non-decreasing, and nearly all at the end.
  for (let w = 1; w < 4; w++) assert(windows[w] >= windows[w - 1], `site 0 windows ${windows}`);
  assert(windows[3] >= 190, `site 0 windows ${windows}`);
  assert(windowsSite1[3] >= 190, `site 1 windows ${windowsSite1}`);
  // δ = 0 on the same case never leaves the left subtree at site 0 (the test above).
  const strict = new PaperBandit({ numSites: 2, delta: 0 });
  let best = 0;
  for (let i = 0; i < 800; i++) {
    if (pullArms(strict, { t: i, T: 1, stored, root, rng, current }).selection[0] === 3) best++;
  }
  assert(best <= 1, `δ = 0 pulled the best arm ${best} times`);
  // δ_d = δ·γᵈ × the spread of the site's arm means: site 0's means are exactly 2, 8, 16, 0.
  assertAlmostEquals(bandit.deltaAt(0, 0), 16, 1e-12);
  assertAlmostEquals(bandit.deltaAt(1, 0), 8, 1e-12);
});

Deno.test("codeBanditSearchProbabilities: root level = softmax of Σ_d scores by hand; select's draws follow the marginal", () => {
  const root = fourTaskTree(); // root children hold [0, 1] and [2, 3]
  const table = {
    numArms: 4,
    numSites: 2,
    S: [-4, -1, -2, -6, -8, -3, -1, -1],
    N: [2, 1, 1, 2, 2, 1, 1, 1],
  };
  const options = {
    t: 3,
    T: 10,
    fixShift: false,
    banditPrefersSimilar: false,
    treeBias: true,
    root,
  };
  const p = codeBanditSearchProbabilities(table, options);
  const scores = codeBanditScores(table, options);
  const totals = [0, 1, 2, 3].map((k) => scores[2 * k] + scores[2 * k + 1]);
  const z = totals.reduce((a, v) => a + Math.exp(v - Math.max(...totals)), 0);
  assertArrayAlmostEquals(p.root!, totals.map((v) => Math.exp(v - Math.max(...totals)) / z), 1e-12);
  // Arms 0 and 1 share a root child, so their conditional tables are the same.
  assertArrayAlmostEquals(p.conditional[0], p.conditional[1], 0);
  for (let d = 0; d < 2; d++) {
    assertAlmostEquals([0, 1, 2, 3].reduce((a, k) => a + p.marginal[k * 2 + d], 0), 1, 1e-12);
  }
  // Without the bias the site level is codeBanditProbabilities.
  const flat = codeBanditSearchProbabilities(table, { ...options, treeBias: false });
  assertEquals(flat.root, null);
  assertArrayAlmostEquals(flat.marginal, codeBanditProbabilities(table, options), 0);
  // Monte Carlo: a CodeBandit with these statistics draws arm k at site d with p.marginal.
  const bandit = new CodeBandit({
    numSites: 2,
    fixShift: false,
    treeBias: true,
    banditPrefersSimilar: false,
  });
  bandit.stats.ensureArms(4);
  bandit.stats.S.set(table.S);
  bandit.stats.N.set(table.N);
  const rng = new Rng(3);
  const counts = new Float64Array(8);
  const draws = 20000;
  const stored = dummyStored(4, 4);
  for (let i = 0; i < draws; i++) {
    const sel = bandit.select({ t: 3, T: 10, stored, root, rng });
    counts[sel[0] * 2]++;
    counts[sel[1] * 2 + 1]++;
  }
  for (let i = 0; i < 8; i++) assertAlmostEquals(counts[i] / draws, p.marginal[i], 0.015);
});
