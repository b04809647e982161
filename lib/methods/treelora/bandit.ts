/**
 * Per-site arm selection: every step, each LoRA site d picks one previous
 * task k_d (an "arm") whose stored vector the regulariser then uses.
 *
 * Three policies share one interface ({@link ArmSelector}) and one table of
 * statistics ({@link ArmStatistics}: S = cumulative negative L1 distance,
 * N = pull count, per arm and site):
 *
 * - {@link CodeBandit}: the released code's softmax sampling (spec §4.5);
 * - {@link PaperBandit}: the paper's hierarchical LCB (Eq. 2), descended
 *   deterministically;
 * - {@link RandomSelector}: a uniform arm per site (Table 5 (ii)).
 *
 * One step is `select` → distances between the current vector and the
 * selected stored rows → `update`; {@link pullArms} does all three.
 *
 * @module
 */

import type { Rng } from "../../random.ts";
import type { KDNode } from "./kd_tree.ts";
import { rootChildOf } from "./kd_tree.ts";
import type { SelectionPolicy, TreeLoraOptions } from "./options.ts";
import type { FloatArray } from "./signature.ts";
import { siteDistances } from "./signature.ts";

/** What a policy sees when it selects. */
export interface SelectInput {
  /**
   * 0-based step in the statistics window (code mode: the micro-step within
   * the epoch). Used by the code bandit's width only.
   */
  t: number;
  /** Steps in the window (code mode: micro-batches per epoch). Code bandit only. */
  T: number;
  /** Stored M×D vectors of the previous tasks 0..n−1: the arms. */
  stored: readonly FloatArray[];
  /** The tree built from exactly these n tasks, or null (no tree). */
  root: KDNode | null;
  /** The method's random stream. */
  rng: Rng;
}

/** The policies that actually select. */
export type ActivePolicy = Exclude<SelectionPolicy, "none">;

/** Checkpointable state of a selector (plain JSON numbers). */
export interface SelectorState {
  /** Which policy wrote it. */
  policy: ActivePolicy;
  /** Number of sites M. */
  numSites: number;
  /** Number of arms n (0 before the first `select` after a reset). */
  numArms: number;
  /** Completed `update` calls since the last reset. */
  rounds: number;
  /** Cumulative negative L1 distance, n×M row-major (`S[k·M + d]`). */
  S: number[];
  /** Pull counts, n×M row-major. */
  N: number[];
}

/** A per-site arm selection policy. */
export interface ArmSelector {
  /** The policy name. */
  readonly policy: ActivePolicy;
  /** Number of sites M. */
  readonly numSites: number;
  /** The statistics table. */
  readonly stats: ArmStatistics;
  /** Choose one arm per site: an Int32Array of length M with values in 0..n−1. */
  select(input: SelectInput): Int32Array;
  /** Record the pulled arms' L1 distances: N[k_d, d] += 1, S[k_d, d] −= distance_d. */
  update(selection: Int32Array, distances: ArrayLike<number>): void;
  /** Forget all statistics (window start). */
  reset(): void;
  /** The state, for checkpoints. */
  state(): SelectorState;
  /** Restore a state returned by `state()`. */
  restore(state: SelectorState): void;
}

/** A read-only view of an arm table: S and N, n×M row-major. */
export interface ArmTable {
  /** Number of arms n. */
  numArms: number;
  /** Number of sites M. */
  numSites: number;
  /** Cumulative negative L1 distance per arm and site. */
  S: ArrayLike<number>;
  /** Pull count per arm and site. */
  N: ArrayLike<number>;
}

/**
 * The statistics every policy keeps, per arm k and site d (index k·M + d):
 * S = −Σ (L1 distances observed when k was pulled at d), N = pull count.
 * The arm count is fixed by the first `ensureArms` after a reset.
 *
 * @example
 * ```ts
 * import { ArmStatistics } from "./bandit.ts";
 * const stats = new ArmStatistics(2);
 * stats.ensureArms(3);
 * stats.record(new Int32Array([0, 2]), [1.5, 0.5]);
 * stats.meanDistance(0, 0); // 1.5
 * ```
 */
export class ArmStatistics implements ArmTable {
  /** Number of sites M. */
  readonly numSites: number;
  #numArms = 0;
  #rounds = 0;
  #S = new Float64Array(0);
  #N = new Float64Array(0);

  /** Empty statistics for `numSites` sites. */
  constructor(numSites: number) {
    if (!Number.isInteger(numSites) || numSites < 1) {
      throw new Error(`ArmStatistics: numSites must be a positive integer, got ${numSites}`);
    }
    this.numSites = numSites;
  }

  /** Number of arms (0 until `ensureArms`). */
  get numArms(): number {
    return this.#numArms;
  }

  /** Completed `record` calls since the last reset. */
  get rounds(): number {
    return this.#rounds;
  }

  /** S (a live view; do not modify). */
  get S(): Float64Array {
    return this.#S;
  }

  /** N (a live view; do not modify). */
  get N(): Float64Array {
    return this.#N;
  }

  /**
   * Size the table for `numArms` arms if it is empty; throw if it already
   * holds a different number (the caller forgot a reset at task start).
   */
  ensureArms(numArms: number): void {
    if (!Number.isInteger(numArms) || numArms < 1) {
      throw new Error(
        `ArmStatistics: need at least one stored task to select from, got ${numArms}`,
      );
    }
    if (this.#numArms === 0) {
      this.#numArms = numArms;
      this.#S = new Float64Array(numArms * this.numSites);
      this.#N = new Float64Array(numArms * this.numSites);
    } else if (this.#numArms !== numArms) {
      throw new Error(
        `ArmStatistics: statistics are for ${this.#numArms} arms but ${numArms} tasks are ` +
          `stored; call reset() when a task starts`,
      );
    }
  }

  /** Record one round: for each site d, N[k_d,d] += 1 and S[k_d,d] −= distances[d]. */
  record(selection: Int32Array, distances: ArrayLike<number>): void {
    const M = this.numSites;
    if (selection.length !== M || distances.length !== M) {
      throw new Error(
        `ArmStatistics.record: expected ${M} selections and distances, got ` +
          `${selection.length} and ${distances.length}`,
      );
    }
    for (let d = 0; d < M; d++) {
      const k = selection[d];
      if (k < 0 || k >= this.#numArms) {
        throw new Error(`ArmStatistics.record: site ${d} selects arm ${k} of ${this.#numArms}`);
      }
      const dist = distances[d];
      if (!Number.isFinite(dist) || dist < 0) {
        throw new Error(`ArmStatistics.record: distance at site ${d} is ${dist}`);
      }
      this.#N[k * M + d] += 1;
      this.#S[k * M + d] -= dist;
    }
    this.#rounds++;
  }

  /** Mean observed L1 distance of arm k at site d (0 if never pulled). */
  meanDistance(arm: number, site: number): number {
    const i = arm * this.numSites + site;
    return this.#N[i] > 0 ? -this.#S[i] / this.#N[i] : 0;
  }

  /** Forget everything, including the arm count. */
  reset(): void {
    this.#numArms = 0;
    this.#rounds = 0;
    this.#S = new Float64Array(0);
    this.#N = new Float64Array(0);
  }

  /** The state, as plain JSON numbers. */
  state(policy: ActivePolicy): SelectorState {
    return {
      policy,
      numSites: this.numSites,
      numArms: this.#numArms,
      rounds: this.#rounds,
      S: Array.from(this.#S),
      N: Array.from(this.#N),
    };
  }

  /** Restore a state written by a selector of policy `policy`. */
  restore(state: SelectorState, policy: ActivePolicy): void {
    if (state.policy !== policy) {
      throw new Error(`restore: state was written by "${state.policy}", not "${policy}"`);
    }
    const size = state.numArms * this.numSites;
    if (
      state.numSites !== this.numSites || state.S.length !== size || state.N.length !== size
    ) {
      throw new Error(
        `restore: state is for ${state.numSites} sites × ${state.numArms} arms with ` +
          `${state.S.length}/${state.N.length} entries; this selector has ${this.numSites} sites`,
      );
    }
    this.#numArms = state.numArms;
    this.#rounds = state.rounds;
    this.#S = Float64Array.from(state.S);
    this.#N = Float64Array.from(state.N);
  }
}

function checkTree(root: KDNode | null, numArms: number): void {
  if (root === null) return;
  const ok = root.tasks.length === numArms && root.tasks.every((k, i) => k === i);
  if (!ok) {
    throw new Error(
      `selector: the tree holds tasks [${root.tasks.join(", ")}] but ${numArms} tasks are ` +
        `stored; rebuild the tree from exactly the stored tasks`,
    );
  }
}

function softmax(values: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]);
  const out = new Float64Array(values.length);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    out[i] = Math.exp(values[i] - max);
    total += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

/** Options of the code bandit's score (spec §4.5 steps 1–4). */
export interface CodeScoreOptions {
  /** 0-based step in the window. */
  t: number;
  /** Steps in the window. */
  T: number;
  /** Subtract the global min instead of adding it. */
  fixShift: boolean;
  /** score = −avgDist + width instead of avgDist + width. */
  banditPrefersSimilar: boolean;
}

/**
 * The code bandit's scores, n×M row-major, after the shift (spec §4.5 steps
 * 1–4): μ = S/N (0 if N = 0), w = sqrt(ln(2T(t+1)(t+2)))/sqrt(2N + 1e−5),
 * score = −μ + w (= avgDist + w; with `banditPrefersSimilar`, μ + w), then
 * score += min(score) (with `fixShift`, score −= min(score)).
 *
 * @example
 * ```ts
 * import { codeBanditScores } from "./bandit.ts";
 * const s = codeBanditScores({ numArms: 2, numSites: 1, S: [-10, -3], N: [2, 1] }, {
 *   t: 4, T: 100, fixShift: false, banditPrefersSimilar: false,
 * }); // ≈ [11.5603, 10.1712]
 * ```
 */
export function codeBanditScores(table: ArmTable, options: CodeScoreOptions): Float64Array {
  const { t, T } = options;
  if (!Number.isInteger(T) || T < 1 || !Number.isInteger(t) || t < 0) {
    throw new Error(`codeBanditScores: need integers T >= 1 and t >= 0, got T=${T}, t=${t}`);
  }
  const size = table.numArms * table.numSites;
  const logTerm = Math.sqrt(Math.log(2 * T * (t + 1) * (t + 2)));
  const scores = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const n = table.N[i];
    const mu = n > 0 ? table.S[i] / n : 0;
    const width = logTerm / Math.sqrt(2 * n + 1e-5);
    scores[i] = options.banditPrefersSimilar ? mu + width : -(mu - width);
  }
  let min = Infinity;
  for (let i = 0; i < size; i++) min = Math.min(min, scores[i]);
  for (let i = 0; i < size; i++) scores[i] = options.fixShift ? scores[i] - min : scores[i] + min;
  return scores;
}

/** The root-level tree bias: multiply the scores of `tasks` by `factor`. */
export interface TreeBias {
  /** The tasks of the chosen root child. */
  tasks: readonly number[];
  /** min(child median, 1.5), or 1 for a leaf child. */
  factor: number;
}

/**
 * The code's tree-bias factor of a root child: min(median, 1.5) for an
 * internal child, 1 for a leaf child (no median).
 *
 * @example
 * ```ts
 * import { treeBiasFactor } from "./bandit.ts";
 * treeBiasFactor({ tasks: [0], depth: 1, isLeaf: true }); // 1
 * ```
 */
export function treeBiasFactor(child: KDNode): number {
  return child.isLeaf || child.median === undefined ? 1 : Math.min(child.median, 1.5);
}

function probabilitiesFromScores(
  scores: Float64Array,
  numArms: number,
  numSites: number,
  bias: TreeBias | undefined,
): Float64Array {
  const s = scores.slice();
  if (bias !== undefined) {
    for (const k of bias.tasks) {
      for (let d = 0; d < numSites; d++) s[k * numSites + d] *= bias.factor;
    }
  }
  let max = -Infinity;
  let min = Infinity;
  for (const v of s) {
    max = Math.max(max, v);
    min = Math.min(min, v);
  }
  const range = max - min + 1e-5;
  for (let i = 0; i < s.length; i++) s[i] /= range;
  const probs = new Float64Array(s.length);
  const column = new Float64Array(numArms);
  for (let d = 0; d < numSites; d++) {
    for (let k = 0; k < numArms; k++) column[k] = s[k * numSites + d];
    const p = softmax(column);
    for (let k = 0; k < numArms; k++) probs[k * numSites + d] = p[k];
  }
  return probs;
}

/**
 * The code bandit's sampling probabilities, n×M row-major (each site's
 * column sums to 1): the scores of {@link codeBanditScores}, times the tree
 * bias if one is given (step 5 without its random draw), divided by
 * (max − min + 1e−5) over the whole table (step 6), softmax over arms per
 * site (step 8).
 *
 * @example
 * ```ts
 * import { codeBanditProbabilities } from "./bandit.ts";
 * codeBanditProbabilities({ numArms: 2, numSites: 1, S: [-10, -3], N: [2, 1] }, {
 *   t: 4, T: 100, fixShift: false, banditPrefersSimilar: false,
 * }); // ≈ [0.7311, 0.2689]
 * ```
 */
export function codeBanditProbabilities(
  table: ArmTable,
  options: CodeScoreOptions & { bias?: TreeBias },
): Float64Array {
  const scores = codeBanditScores(table, options);
  return probabilitiesFromScores(scores, table.numArms, table.numSites, options.bias);
}

/** Every probability of one code-bandit round (see {@link codeBanditSearchProbabilities}). */
export interface CodeSearchProbabilities {
  /**
   * The root level: the distribution of the first draw, softmax_k(Σ_d score[k, d]) over the n
   * arms; null when the tree bias does not apply (`treeBias` off, or no tree / a leaf root).
   */
  root: Float64Array | null;
  /**
   * The site level given the first draw: `conditional[first]` is the n×M table (row-major,
   * each site's column sums to 1) after the bias of the root child holding `first`; with no
   * root level, one table (index 0).
   */
  conditional: Float64Array[];
  /** The site level marginalised over the first draw: Σ_first root[first]·conditional[first]. */
  marginal: Float64Array;
}

/**
 * Every probability the released code's bandit samples from in one round, the root level
 * included (spec §4.5 steps 1–8), as one pure function of the statistics, (t, T), the switches
 * and the tree: the first draw's distribution, the per-site distribution given it, and the
 * per-site marginal. {@link CodeBandit.select} draws from exactly these, so anyone can check
 * the search against the official code on their own inputs.
 *
 * @example
 * ```ts
 * import { codeBanditSearchProbabilities } from "./bandit.ts";
 * const p = codeBanditSearchProbabilities({ numArms: 2, numSites: 1, S: [-10, -3], N: [2, 1] }, {
 *   t: 4, T: 100, fixShift: false, banditPrefersSimilar: false, treeBias: false, root: null,
 * });
 * p.marginal; // ≈ [0.7311, 0.2689]
 * ```
 */
export function codeBanditSearchProbabilities(
  table: ArmTable,
  options: CodeScoreOptions & { treeBias: boolean; root: KDNode | null },
): CodeSearchProbabilities {
  const n = table.numArms;
  const M = table.numSites;
  const scores = codeBanditScores(table, options);
  const root = options.root;
  if (!options.treeBias || root === null || root.isLeaf) {
    const only = probabilitiesFromScores(scores, n, M, undefined);
    return { root: null, conditional: [only], marginal: only };
  }
  const totals = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let d = 0; d < M; d++) totals[k] += scores[k * M + d];
  }
  const first = softmax(totals);
  const conditional = Array.from({ length: n }, (_, k) => {
    const child = rootChildOf(root, k);
    if (child === undefined) {
      throw new Error(`codeBanditSearchProbabilities: task ${k} is not under the root`);
    }
    return probabilitiesFromScores(scores, n, M, {
      tasks: child.tasks,
      factor: treeBiasFactor(child),
    });
  });
  const marginal = new Float64Array(n * M);
  conditional.forEach((c, k) => {
    for (let i = 0; i < marginal.length; i++) marginal[i] += first[k] * c[i];
  });
  return { root: first, conditional, marginal };
}

/** Options of a {@link CodeBandit}. */
export interface CodeBanditOptions {
  /** Number of sites M. */
  numSites: number;
  /** Subtract the min instead of adding it. */
  fixShift: boolean;
  /** Apply the root-level tree bias. */
  treeBias: boolean;
  /** Favour close tasks (score = −avgDist + width). */
  banditPrefersSimilar: boolean;
}

/** The tree bias applied at the last `select`, with the first draw. */
export interface AppliedTreeBias extends TreeBias {
  /** The arm drawn from softmax(Σ_d score) that chose the root child. */
  first: number;
}

/**
 * What every selector shares: the statistics table and its bookkeeping
 * (record, reset, checkpoint). Subclasses add the selection rule.
 */
abstract class StatisticsSelector implements ArmSelector {
  /** Which policy this is. */
  abstract readonly policy: ActivePolicy;
  /** Number of sites M. */
  readonly numSites: number;
  /** S and N. */
  readonly stats: ArmStatistics;

  constructor(numSites: number) {
    this.numSites = numSites;
    this.stats = new ArmStatistics(numSites);
  }

  /** Choose one arm per site. */
  abstract select(input: SelectInput): Int32Array;

  /** Record the pulled arms' distances. */
  update(selection: Int32Array, distances: ArrayLike<number>): void {
    this.stats.record(selection, distances);
  }

  /** Forget the statistics. */
  reset(): void {
    this.stats.reset();
  }

  /** The state, for checkpoints. */
  state(): SelectorState {
    return this.stats.state(this.policy);
  }

  /** Restore a state returned by `state()`. */
  restore(state: SelectorState): void {
    this.stats.restore(state, this.policy);
  }
}

/**
 * The released code's bandit (spec §4.5). Each `select`:
 *
 * 1–4. scores as in {@link codeBanditScores};
 * 5. if `treeBias` and the root has children: draw `first` from
 *    softmax_k(Σ_d score[k, d]) with the Rng, take the root child holding
 *    it, multiply its tasks' scores by {@link treeBiasFactor};
 * 6–8. normalise by the range, then per site d (in order 0..M−1) draw
 *    k_d ~ softmax_k(score[k, d]) with the Rng.
 *
 * Rng use per `select`: one draw for the bias (only when it applies), then
 * one per site. The statistics change only in `update`.
 *
 * @example
 * ```ts
 * import { Rng } from "../../random.ts";
 * import { CodeBandit, pullArms } from "./bandit.ts";
 * const bandit = new CodeBandit({ numSites: 2, fixShift: false, treeBias: true, banditPrefersSimilar: false });
 * const stored = [new Float64Array([1, 1, 0, 0]), new Float64Array([0, 0, 1, 1])];
 * const { selection } = pullArms(bandit, {
 *   t: 0, T: 10, stored, root: null, rng: new Rng(1), current: new Float64Array(4),
 * });
 * ```
 */
export class CodeBandit extends StatisticsSelector {
  /** Always `"code_softmax"`. */
  readonly policy = "code_softmax" as const;
  /** The options. */
  readonly options: Readonly<CodeBanditOptions>;
  /** The tree bias of the last `select` (null if none applied). */
  lastBias: AppliedTreeBias | null = null;

  /** Create a bandit with empty statistics. */
  constructor(options: CodeBanditOptions) {
    super(options.numSites);
    this.options = { ...options };
  }

  /** The sampling probabilities at (t, T) for the current statistics, with an optional bias. */
  probabilities(options: { t: number; T: number; bias?: TreeBias }): Float64Array {
    return codeBanditProbabilities(this.stats, { ...this.options, ...options });
  }

  /** Choose one arm per site (see the class description). */
  select(input: SelectInput): Int32Array {
    const n = input.stored.length;
    this.stats.ensureArms(n);
    checkTree(input.root, n);
    const M = this.numSites;
    const p = codeBanditSearchProbabilities(this.stats, {
      ...this.options,
      t: input.t,
      T: input.T,
      root: input.root,
    });
    this.lastBias = null;
    let probs = p.conditional[0];
    if (p.root !== null) {
      const first = input.rng.categorical(p.root);
      const child = rootChildOf(input.root!, first)!;
      this.lastBias = { first, tasks: child.tasks, factor: treeBiasFactor(child) };
      probs = p.conditional[first];
    }
    const selection = new Int32Array(M);
    const column = new Float64Array(n);
    for (let d = 0; d < M; d++) {
      for (let k = 0; k < n; k++) column[k] = probs[k * M + d];
      selection[d] = input.rng.categorical(column);
    }
    return selection;
  }

  /** Forget the statistics (epoch start in code mode). */
  override reset(): void {
    super.reset();
    this.lastBias = null;
  }
}

/** Options of a {@link PaperBandit}. */
export interface PaperBanditOptions {
  /** Number of sites M. */
  numSites: number;
  /** δ of Eq. 2 (default 0). */
  delta?: number;
  /**
   * γ of Assumption 1: a node at depth d uses δ_d = δ·γᵈ (default 1: the same δ at every
   * depth). Must be in (0, 1].
   */
  gamma?: number;
  /**
   * `"absolute"` (default): δ_d as given. `"relative"`: δ_d in units of the spread of the site's
   * observed arm means (max − min of μ̂ over its pulled arms: the quantity Assumption 1 bounds),
   * so one δ fits any signature scale.
   */
  deltaScale?: "absolute" | "relative";
}

/**
 * The paper's hierarchical lower-confidence-bound search (Eq. 2), run
 * independently for every site d with that site's statistics. With
 * t = (completed rounds since reset) + 1 and μ̂ = mean observed L1 distance:
 *
 * - arm (task) k: LCB_k = μ̂_k − 2·sqrt(ln t / n_k), and −∞ if n_k = 0 (the
 *   paper leaves unpulled arms undefined; −∞ is the optimistic convention of
 *   a minimising bandit);
 * - node: LCB = max(min over children, own bound − δ), where the children
 *   are the left and right subtrees, or, for a leaf holding several tasks
 *   (depth ≥ M), its tasks' arms; a leaf with one task has that arm's LCB;
 *   the own bound uses the node's pooled statistics (n = Σ n_k and
 *   μ̂ = Σ distance / n over its tasks, i.e. the rounds where a task of the
 *   branch was pulled);
 * - initialisation (our choice): a node with an unpulled arm below it has
 *   LCB −∞, so every arm of every site is pulled once, left to right, before
 *   any bound is compared (UCB1's convention). Without this the max with a
 *   pulled node's own bound would hide an unpulled arm indefinitely;
 * - selection: from the root, step to the child with the smaller LCB (ties:
 *   left) down to a leaf, then take its task with the smallest arm LCB
 *   (ties: the first). Without a tree (root null) the arms form one flat
 *   leaf.
 *
 * δ matters: with δ = 0 the own bound of a node that mixes a close and a far
 * task stays high (it averages them), so the descent can keep to a sibling
 * subtree and never reach the best arm; Eq. 2's bound is valid only if the
 * leaves under a node lie within δ of it (Assumption 1). As δ → ∞ the descent
 * becomes a flat LCB argmin over all arms and the tree has no effect.
 *
 * Deterministic: the Rng is not used. t counts the bandit's own rounds, not
 * the input's `t`, so the bound works for a window of any length.
 *
 * @example
 * ```ts
 * import { Rng } from "../../random.ts";
 * import { PaperBandit } from "./bandit.ts";
 * const bandit = new PaperBandit({ numSites: 1 });
 * const stored = [new Float64Array([1]), new Float64Array([2])];
 * bandit.select({ t: 0, T: 1, stored, root: null, rng: new Rng(0) }); // [0]: unpulled arms first
 * ```
 */
export class PaperBandit extends StatisticsSelector {
  /** Always `"paper_lcb"`. */
  readonly policy = "paper_lcb" as const;
  /** δ of Eq. 2. */
  readonly delta: number;
  /** γ of Assumption 1 (δ_d = δ·γᵈ). */
  readonly gamma: number;
  /** Whether δ is in units of the spread of the site's arm means. */
  readonly deltaScale: "absolute" | "relative";

  /** Create a bandit with empty statistics. */
  constructor(options: PaperBanditOptions) {
    super(options.numSites);
    const delta = options.delta ?? 0;
    if (!Number.isFinite(delta) || delta < 0) {
      throw new Error(`PaperBandit: delta must be a finite number >= 0, got ${delta}`);
    }
    const gamma = options.gamma ?? 1;
    if (!(gamma > 0 && gamma <= 1)) {
      throw new Error(`PaperBandit: gamma must be in (0, 1], got ${gamma}`);
    }
    this.delta = delta;
    this.gamma = gamma;
    this.deltaScale = options.deltaScale ?? "absolute";
  }

  /**
   * δ_d of a node at `depth` for site `site`: δ·γᵈ, times the spread (max − min) of the site's
   * pulled arms' mean distances when `deltaScale` is relative.
   */
  deltaAt(depth: number, site: number): number {
    let d = this.delta * this.gamma ** depth;
    if (this.deltaScale === "relative" && d > 0) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let k = 0; k < this.stats.numArms; k++) {
        const n = this.stats.N[k * this.numSites + site];
        if (n === 0) continue;
        const mean = -this.stats.S[k * this.numSites + site] / n;
        lo = Math.min(lo, mean);
        hi = Math.max(hi, mean);
      }
      d *= hi >= lo ? hi - lo : 0;
    }
    return d;
  }

  #logT(): number {
    return Math.log(this.stats.rounds + 1);
  }

  #bound(count: number, distanceSum: number): number {
    if (count === 0) return -Infinity;
    return distanceSum / count - 2 * Math.sqrt(this.#logT() / count);
  }

  /** LCB of arm `arm` at site `site`: μ̂ − 2·sqrt(ln t / n), −∞ if unpulled. */
  armBound(arm: number, site: number): number {
    const i = arm * this.numSites + site;
    return this.#bound(this.stats.N[i], -this.stats.S[i]);
  }

  /** LCB of a tree node at site `site` (see the class description). */
  nodeBound(node: KDNode, site: number): number {
    if (node.isLeaf && node.tasks.length === 1) return this.armBound(node.tasks[0], site);
    const children = node.isLeaf || node.left === undefined || node.right === undefined
      ? node.tasks.map((k) => this.armBound(k, site))
      : [this.nodeBound(node.left, site), this.nodeBound(node.right, site)];
    const minChild = Math.min(...children);
    if (minChild === -Infinity) return -Infinity; // an unpulled arm below: explore it first
    let count = 0;
    let distanceSum = 0;
    for (const k of node.tasks) {
      count += this.stats.N[k * this.numSites + site];
      distanceSum -= this.stats.S[k * this.numSites + site];
    }
    return Math.max(minChild, this.#bound(count, distanceSum) - this.deltaAt(node.depth, site));
  }

  /** The arm chosen at site `site` by descending `root` (or a flat argmin if null). */
  choose(root: KDNode | null, site: number): number {
    let tasks: readonly number[];
    if (root === null) {
      tasks = Array.from({ length: this.stats.numArms }, (_, k) => k);
    } else {
      let node = root;
      while (!node.isLeaf && node.left !== undefined && node.right !== undefined) {
        node = this.nodeBound(node.right, site) < this.nodeBound(node.left, site)
          ? node.right
          : node.left;
      }
      tasks = node.tasks;
    }
    let best = tasks[0];
    let bestBound = this.armBound(best, site);
    for (const k of tasks.slice(1)) {
      const b = this.armBound(k, site);
      if (b < bestBound) {
        best = k;
        bestBound = b;
      }
    }
    return best;
  }

  /** Choose one arm per site by LCB descent. */
  select(input: SelectInput): Int32Array {
    this.stats.ensureArms(input.stored.length);
    checkTree(input.root, input.stored.length);
    return Int32Array.from({ length: this.numSites }, (_, d) => this.choose(input.root, d));
  }
}

/**
 * A uniformly random previous task per site (`rng.int(n)`, sites in order),
 * for Table 5 (ii) "penalty + random search". Statistics are still recorded
 * so that runs can log them.
 *
 * @example
 * ```ts
 * import { Rng } from "../../random.ts";
 * import { RandomSelector } from "./bandit.ts";
 * const sel = new RandomSelector({ numSites: 3 });
 * const stored = [new Float64Array(3), new Float64Array(3)];
 * sel.select({ t: 0, T: 1, stored, root: null, rng: new Rng(7) }); // e.g. [1, 0, 1]
 * ```
 */
export class RandomSelector extends StatisticsSelector {
  /** Always `"random"`. */
  readonly policy = "random" as const;

  /** Create a selector (statistics are recorded but not used for selection). */
  constructor(options: { numSites: number }) {
    super(options.numSites);
  }

  /** A uniform arm per site. */
  select(input: SelectInput): Int32Array {
    const n = input.stored.length;
    this.stats.ensureArms(n);
    return Int32Array.from({ length: this.numSites }, () => input.rng.int(n));
  }
}

/**
 * The selector for resolved options, or null for `selection: "none"`.
 *
 * @example
 * ```ts
 * import { createArmSelector } from "./bandit.ts";
 * import { resolveTreeLoraOptions } from "./options.ts";
 * const options = resolveTreeLoraOptions({}, { track: "lm" });
 * const selector = createArmSelector(options, { numSites: 4 }); // a CodeBandit
 * ```
 */
export function createArmSelector(
  options: Pick<
    TreeLoraOptions,
    | "selection"
    | "fixShift"
    | "treeBias"
    | "banditPrefersSimilar"
    | "delta"
    | "gamma"
    | "deltaScale"
  >,
  context: { numSites: number },
): ArmSelector | null {
  const { numSites } = context;
  switch (options.selection) {
    case "code_softmax":
      return new CodeBandit({
        numSites,
        fixShift: options.fixShift,
        treeBias: options.treeBias,
        banditPrefersSimilar: options.banditPrefersSimilar,
      });
    case "paper_lcb":
      return new PaperBandit({
        numSites,
        delta: options.delta,
        gamma: options.gamma,
        deltaScale: options.deltaScale,
      });
    case "random":
      return new RandomSelector({ numSites });
    case "none":
      return null;
  }
}

/**
 * One bandit round: `select`, the per-site L1 distances between `current`
 * and the selected stored rows ({@link siteDistances}), `update`.
 * `current` is the vector the arms are compared with (code mode: the
 * accumulator's running value after this step's `add`).
 *
 * @example
 * ```ts
 * import { Rng } from "../../random.ts";
 * import { PaperBandit, pullArms } from "./bandit.ts";
 * const bandit = new PaperBandit({ numSites: 1 });
 * const stored = [new Float64Array([1, 0]), new Float64Array([0, 1])];
 * const { selection, distances } = pullArms(bandit, {
 *   t: 0, T: 1, stored, root: null, rng: new Rng(0), current: new Float64Array([1, 0]),
 * }); // selection [0], distances [0]
 * ```
 */
export function pullArms(
  selector: ArmSelector,
  input: SelectInput & { current: FloatArray },
): { selection: Int32Array; distances: Float64Array } {
  const selection = selector.select(input);
  const dim = input.current.length / selector.numSites;
  if (!Number.isInteger(dim)) {
    throw new Error(
      `pullArms: current has ${input.current.length} values, not a multiple of ` +
        `${selector.numSites} sites`,
    );
  }
  const distances = siteDistances(input.current, input.stored, selection, { dim });
  selector.update(selection, distances);
  return { selection, distances };
}
