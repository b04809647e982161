/**
 * `deno task bench:search` — TreeLoRA's per-step task-search cost as the
 * number N of past tasks grows, against an exhaustive reference (issue 3,
 * item 7; spec §3.6 Remark 1, §4.4–4.5).
 *
 * For each signature shape (M sites × D values per site; default the
 * paper's ViT setting M = 10 (q, v of ViT-B/16 blocks 0–4), D = r·d_in =
 * 8·768 = 6144, and the harness's `tiny` ViT, M = 8, D = 8·64 = 512) and each
 * N in `--tasks`, it times one search step of
 * - code: `pullArms` with a {@link CodeBandit} (tree bias on, over a tree
 *   from `buildTree` with the code's split: dot product, first differences),
 *   i.e. scores, the tree-bias draw, M softmax draws, the L1 distances of the
 *   M chosen rows and the statistics update, then `selectedRows`;
 * - paper: the same with a {@link PaperBandit} (hierarchical LCB descent over
 *   a tree with the paper's split: L1, no differences);
 * - exhaustive: {@link allSiteDistances} (N·M L1 distances of length D),
 *   {@link nearestArms} and `selectedRows`, i.e. the same output (one task
 *   per site and its rows) found without bandit or tree;
 * and, once per task rather than per step, `buildTree` over the N stored
 * vectors, with either split.
 *
 * Signatures are synthetic, of the real size: a random walk from a LoRA A
 * initialisation (U(±1/√d_in), d_in = D/8), whose per-task steps come from 5
 * task families, times M (the code's accumulator scale). One set of
 * max(N) + 1 vectors per shape is generated once; N tasks are its first N
 * vectors and the current vector is the last one. A fresh bandit is used per
 * round (a statistics window of T = warm-up + timed steps, like one epoch
 * in code mode); each round runs `--warmup` untimed steps, then times every
 * step on its own. Rounds interleave shapes, N and methods (the method order
 * rotates per round). Reported: the median µs/step over all timed steps, the
 * ratio exhaustive/code of those medians, and the median tree build time in
 * ms. Results go to `results/bench/<out>.json` and `.md` (default
 * `search_scaling`). Flags: --tasks, --sites, --dims, --steps, --warmup,
 * --repeats, --builds, --seed, --out. With `--allow-sys=loadavg` the load
 * averages before and after the run are recorded too (the machine's other
 * work inflates the times; see them before comparing runs).
 *
 * How to read the table: per step the code bandit's score computation is
 * O(N·M) numbers (no vectors) and its distance work is O(M·D), independent
 * of N (Remark 1's O(1) similarity work), while the exhaustive search is
 * O(N·M·D), so exhaustive/code grows about linearly in N until the code
 * bandit's O(N·M) bookkeeping is what it costs.
 *
 * @module
 */

import { join } from "@std/path";
import { writeFileAtomic, writeJsonAtomic } from "../../lib/io.ts";
import { CodeBandit, PaperBandit, pullArms } from "../../lib/methods/treelora/bandit.ts";
import { allSiteDistances, nearestArms } from "../../lib/methods/treelora/exhaustive.ts";
import {
  buildTree,
  type BuildTreeOptions,
  type KDNode,
} from "../../lib/methods/treelora/kd_tree.ts";
import { selectedRows } from "../../lib/methods/treelora/signature.ts";
import { Rng } from "../../lib/random.ts";
import { collectProvenance } from "../../lib/run/provenance.ts";
import { flagHelp, parseFlags } from "../../lib/flags.ts";

const FLAGS = {
  tasks: { type: "int-list" as const, help: "numbers N of past tasks", default: "10,50,200,1000" },
  sites: {
    type: "int-list" as const,
    help: "sites M per shape (paired with --dims)",
    default: "10,8",
  },
  dims: {
    type: "int-list" as const,
    help: "values D per site per shape (paired with --sites)",
    default: "6144,512",
  },
  steps: {
    type: "number" as const,
    help: "timed steps per shape, N and method, over all rounds",
    default: "300",
  },
  warmup: { type: "number" as const, help: "untimed steps at each round start", default: "20" },
  repeats: { type: "number" as const, help: "interleaved rounds", default: "3" },
  builds: { type: "number" as const, help: "timed tree builds per round and split", default: "3" },
  seed: { type: "number" as const, help: "seed of the signatures and the bandit", default: "0" },
  out: {
    type: "string" as const,
    help: "result name under results/bench/",
    default: "search_scaling",
  },
  help: { type: "boolean" as const, help: "print this help" },
};

type Method = "code" | "paper" | "exhaustive";

const METHODS: readonly Method[] = ["code", "paper", "exhaustive"];

/** LoRA rank assumed when deriving d_in = D / rank for the A initialisation. */
const RANK = 8;

/** Task families of the synthetic random walk. */
const FAMILIES = 5;

const CODE_TREE = { split: "dot_lower_median", useDifferences: true } as const;
const PAPER_TREE = { split: "l1_lower_median", useDifferences: false } as const;

interface Shape {
  numSites: number;
  dim: number;
}

interface Signatures {
  /** max(N) stored task vectors, M×D row-major each. */
  stored: Float64Array[];
  /** The current task's vector (the accumulator's value the bandit compares with). */
  current: Float64Array;
}

interface StepContext {
  stored: readonly Float64Array[];
  current: Float64Array;
  root: KDNode;
  shape: Shape;
  rng: Rng;
}

/** Sum of values of every step's output, so that no work can be optimised away. */
let checksum = 0;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** xorshift32 uniform in [−1, 1): cheap enough for 60 M values. */
function uniformStream(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2147483648 - 1;
  };
}

function generateSignatures(count: number, shape: Shape, seed: number): Signatures {
  const size = shape.numSites * shape.dim;
  const bound = 1 / Math.sqrt(shape.dim / RANK);
  const next = uniformStream(seed);
  const walk = new Float64Array(size);
  for (let i = 0; i < size; i++) walk[i] = bound * next();
  const families = Array.from({ length: FAMILIES }, () => {
    const f = new Float64Array(size);
    for (let i = 0; i < size; i++) f[i] = bound * next();
    return f;
  });
  const vectors: Float64Array[] = [];
  for (let k = 0; k <= count; k++) {
    const family = families[k % FAMILIES];
    const v = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      walk[i] += 0.1 * (family[i] + bound * next());
      v[i] = shape.numSites * walk[i];
    }
    vectors.push(v);
  }
  return { stored: vectors.slice(0, count), current: vectors[count] };
}

function finishStep(stored: readonly Float64Array[], selection: Int32Array, dim: number): void {
  const rows = selectedRows(stored, selection, { dim });
  checksum += selection[0] + rows[rows.length - 1][0];
}

/** Run a fresh search for `warmup` + `steps` steps; µs of each timed step. */
function timeSearch(
  method: Method,
  ctx: StepContext,
  options: { warmup: number; steps: number },
): number[] {
  const { stored, current, root, shape, rng } = ctx;
  const { numSites, dim } = shape;
  const T = options.warmup + options.steps;
  const bandit = method === "code"
    ? new CodeBandit({ numSites, fixShift: false, treeBias: true, banditPrefersSimilar: false })
    : method === "paper"
    ? new PaperBandit({ numSites })
    : null;
  const times: number[] = [];
  for (let t = 0; t < T; t++) {
    const start = performance.now();
    if (bandit === null) {
      const selection = nearestArms(allSiteDistances(current, stored, { dim }), { numSites });
      finishStep(stored, selection, dim);
    } else {
      const { selection } = pullArms(bandit, { t, T, stored, root, rng, current });
      finishStep(stored, selection, dim);
    }
    const elapsed = performance.now() - start;
    if (t >= options.warmup) times.push(1000 * elapsed);
  }
  return times;
}

/** Build the tree `builds` times; ms of each build and the last tree. */
function timeBuilds(
  stored: readonly Float64Array[],
  options: BuildTreeOptions & { builds: number },
): { ms: number[]; root: KDNode } {
  const ms: number[] = [];
  let root: KDNode | null = null;
  for (let b = 0; b < options.builds; b++) {
    const start = performance.now();
    root = buildTree(stored, options);
    ms.push(performance.now() - start);
  }
  return { ms, root: root! };
}

function treeDepth(node: KDNode): number {
  if (node.left === undefined || node.right === undefined) return node.depth;
  return Math.max(treeDepth(node.left), treeDepth(node.right));
}

/** The 1, 5, 15 min load averages if `--allow-sys=loadavg` was given, else null. */
function loadAverage(): number[] | null {
  const status = Deno.permissions.querySync({ name: "sys", kind: "loadavg" });
  return status.state === "granted" ? Deno.loadavg().map((x) => round(x, 2)) : null;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

interface Samples {
  us: Record<Method, number[]>;
  roundMedians: Record<Method, number[]>;
  codeBuildMs: number[];
  paperBuildMs: number[];
  codeDepth: number;
  paperDepth: number;
}

if (import.meta.main) {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(flagHelp("deno task bench:search [flags]", FLAGS));
    Deno.exit(0);
  }
  const tasks = ((f.tasks as number[] | undefined) ?? [10, 50, 200, 1000])
    .map((n) => positiveInt("tasks", n));
  const sites = (f.sites as number[] | undefined) ?? [10, 8];
  const dims = (f.dims as number[] | undefined) ?? [6144, 512];
  if (sites.length !== dims.length) {
    throw new Error(
      `--sites and --dims pair up by position; got ${sites.length} and ${dims.length}`,
    );
  }
  const shapes: Shape[] = sites.map((m, i) => ({
    numSites: positiveInt("sites", m),
    dim: positiveInt("dims", dims[i]),
  }));
  const steps = positiveInt("steps", (f.steps as number | undefined) ?? 300);
  const warmup = (f.warmup as number | undefined) ?? 20;
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new Error(`--warmup must be an integer >= 0, got ${warmup}`);
  }
  const repeats = positiveInt("repeats", (f.repeats as number | undefined) ?? 3);
  const builds = positiveInt("builds", (f.builds as number | undefined) ?? 3);
  const seed = (f.seed as number | undefined) ?? 0;
  const out = (f.out as string | undefined) ?? "search_scaling";
  const stepsPerRound = Math.ceil(steps / repeats);
  const maxTasks = Math.max(...tasks);

  const provenance = await collectProvenance(".");
  const loadBefore = loadAverage();
  const startedAt = performance.now();
  const signatures = shapes.map((shape, i) => {
    const t0 = performance.now();
    const s = generateSignatures(maxTasks, shape, seed + 1000 * i);
    console.error(
      `signatures M=${shape.numSites} D=${shape.dim}: ${maxTasks + 1} vectors in ` +
        `${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return s;
  });
  const key = (shape: Shape, n: number) => `${shape.numSites}x${shape.dim}/${n}`;
  const samples = new Map<string, Samples>();
  const rng = new Rng(seed);
  for (let r = 0; r < repeats; r++) {
    const order = METHODS.map((_, i) => METHODS[(i + r) % METHODS.length]);
    shapes.forEach((shape, i) => {
      for (const n of tasks) {
        const stored = signatures[i].stored.slice(0, n);
        const base = { numSites: shape.numSites, dim: shape.dim, builds };
        const code = timeBuilds(stored, { ...base, ...CODE_TREE });
        const paper = timeBuilds(stored, { ...base, ...PAPER_TREE });
        const s: Samples = samples.get(key(shape, n)) ?? {
          us: { code: [], paper: [], exhaustive: [] },
          roundMedians: { code: [], paper: [], exhaustive: [] },
          codeBuildMs: [],
          paperBuildMs: [],
          codeDepth: treeDepth(code.root),
          paperDepth: treeDepth(paper.root),
        };
        samples.set(key(shape, n), s);
        s.codeBuildMs.push(...code.ms);
        s.paperBuildMs.push(...paper.ms);
        const line: string[] = [];
        for (const method of order) {
          const root = method === "paper" ? paper.root : code.root;
          const ctx = { stored, current: signatures[i].current, root, shape, rng };
          const us = timeSearch(method, ctx, { warmup, steps: stepsPerRound });
          s.us[method].push(...us);
          s.roundMedians[method].push(median(us));
          line.push(`${method} ${median(us).toFixed(1)} µs`);
        }
        console.error(
          `round ${r + 1}/${repeats} M=${shape.numSites} D=${shape.dim} N=${n}: ` +
            `${line.join(", ")}, tree ${median(code.ms).toFixed(2)} ms`,
        );
      }
    });
  }
  const loadAfter = loadAverage();
  const seconds = (performance.now() - startedAt) / 1000;

  const rows = shapes.flatMap((shape) =>
    tasks.map((n) => {
      const s = samples.get(key(shape, n))!;
      const code = median(s.us.code);
      const paper = median(s.us.paper);
      const exhaustive = median(s.us.exhaustive);
      return {
        N: n,
        M: shape.numSites,
        D: shape.dim,
        code_us_per_step: round(code, 1),
        paper_us_per_step: round(paper, 1),
        exhaustive_us_per_step: round(exhaustive, 1),
        exhaustive_over_code: round(exhaustive / code, 2),
        exhaustive_over_paper: round(exhaustive / paper, 2),
        tree_build_ms: round(median(s.codeBuildMs), 3),
        paper_tree_build_ms: round(median(s.paperBuildMs), 3),
        p10_p90_us: Object.fromEntries(
          METHODS.map((
            m,
          ) => [m, [round(quantile(s.us[m], 0.1), 1), round(quantile(s.us[m], 0.9), 1)]]),
        ),
        round_medians_us: Object.fromEntries(
          METHODS.map((m) => [m, s.roundMedians[m].map((x) => round(x, 1))]),
        ),
        timed_steps: s.us.code.length,
        tree_builds: s.codeBuildMs.length,
        tree_depth: { code: s.codeDepth, paper: s.paperDepth },
        values_per_step: {
          code_scores: n * shape.numSites,
          code_distance_values: shape.numSites * shape.dim,
          exhaustive_distance_values: n * shape.numSites * shape.dim,
        },
      };
    })
  );
  const what = "median µs per search step (code: CodeBandit pullArms with tree bias + " +
    "selectedRows; paper: PaperBandit pullArms + selectedRows; exhaustive: all N·M L1 " +
    `distances + per-site argmin + selectedRows), ${stepsPerRound} timed steps per round after ` +
    `${warmup} warm-up steps, ${repeats} interleaved rounds; tree build: median ms of ` +
    `buildTree over the N tasks (${builds} builds per round), code split in tree_build_ms`;
  const howToRead = "per step the code bandit's score computation is O(N·M) numbers and its " +
    "distance work O(M·D), independent of N; the exhaustive search is O(N·M·D)";
  const result = {
    what,
    howToRead,
    signatures: "synthetic: random walk from U(±1/√(D/8)) with per-task steps from " +
      `${FAMILIES} families, ×M; N tasks = the first N of ${maxTasks} vectors, current = ` +
      "vector N_max + 1",
    settings: { tasks, shapes, steps, stepsPerRound, warmup, repeats, builds, seed },
    load: {
      before: loadBefore,
      after: loadAfter,
      note: "1, 5, 15 min load averages; null unless run with --allow-sys=loadavg",
    },
    seconds: round(seconds, 1),
    checksum,
    provenance,
    rows,
  };
  await writeJsonAtomic(join("results", "bench", `${out}.json`), result);
  const md = [
    `# bench ${out}`,
    "",
    `${what}.`,
    "",
    `How to read: ${howToRead}. Load average before/after (1, 5, 15 min): ` +
    `${loadBefore?.join(", ") ?? "n/a"} / ${
      loadAfter?.join(", ") ?? "n/a"
    } on ${navigator.hardwareConcurrency} CPUs; ` +
    `${round(seconds, 1)} s.`,
    "",
    "| N | M | D | code search µs/step | paper search µs/step | exhaustive µs/step | " +
    "exhaustive/code | tree build ms | paper tree build ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.N} | ${r.M} | ${r.D} | ${r.code_us_per_step} | ${r.paper_us_per_step} | ` +
      `${r.exhaustive_us_per_step} | ${r.exhaustive_over_code} | ${r.tree_build_ms} | ` +
      `${r.paper_tree_build_ms} |`
    ),
  ].join("\n");
  await writeFileAtomic(join("results", "bench", `${out}.md`), md + "\n");
  console.log(md);
}
