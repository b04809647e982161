/**
 * The pure parts composed the way the TreeLoRA method will use them, without a trainer: A
 * values drift a little every step; each task stores its signature and rebuilds the tree; later
 * tasks pull arms and compute the penalty.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { Rng } from "../../../lib/random.ts";
import { createArmSelector, pullArms } from "../../../lib/methods/treelora/bandit.ts";
import { buildTree, type KDNode, treeToJson } from "../../../lib/methods/treelora/kd_tree.ts";
import {
  resolveTreeLoraOptions,
  type TreeLoraTrack,
} from "../../../lib/methods/treelora/options.ts";
import {
  codeRegularizer,
  paperL1Penalty,
  regularizerTau,
} from "../../../lib/methods/treelora/regularizer.ts";
import {
  flattenSites,
  selectedRows,
  SignatureAccumulator,
} from "../../../lib/methods/treelora/signature.ts";

await tf.setBackend("cpu");

function simulate(partial: Record<string, unknown>, track: TreeLoraTrack) {
  const options = resolveTreeLoraOptions(partial, { track });
  const rng = new Rng(3);
  const shape: [number, number] = [2, 3];
  const sites = ["b0.q", "b0.v", "b1.q"].map((name) => ({
    name,
    a: tf.variable(tf.randomUniform(shape, -0.5, 0.5, "float32", rng.seed())),
  }));
  const M = sites.length;
  const D = shape[0] * shape[1];
  const acc = new SignatureAccumulator({
    numSites: M,
    dim: D,
    scale: options.accumulatorScale,
    source: options.signatureSource,
  });
  const selector = createArmSelector(options, { numSites: M });
  const stored: Float64Array[] = [];
  let root: KDNode | null = null;
  const epochs = 2;
  const T = 5;
  const before = tf.memory().numTensors;
  const penalties: number[] = [];
  // Independent bookkeeping in plain JS: the A rows summed over each accumulation window, and
  // the paper penalty λ·Σ|A − P| recomputed from the selected rows.
  const expectedStored: Float64Array[] = [];
  const expectedPenalties: number[] = [];
  let windowSum = new Float64Array(M * D);
  let windowSteps = 0;
  for (let task = 0; task < 3; task++) {
    if (!options.resetPerEpoch) {
      windowSum = new Float64Array(M * D);
      windowSteps = 0;
    }
    selector?.reset();
    if (!options.resetPerEpoch) acc.reset(epochs * T);
    for (let epoch = 0; epoch < epochs; epoch++) {
      if (options.resetPerEpoch) {
        acc.reset(T);
        selector?.reset();
        windowSum = new Float64Array(M * D);
        windowSteps = 0;
      }
      for (let t = 0; t < T; t++) {
        // beforeStep: the step's signature row (A values here), then the arm pull.
        const flat = flattenSites(
          sites.map((s) => ({ name: s.name, values: s.a.dataSync<"float32">() })),
        );
        acc.add(flat.data);
        const rows = Float64Array.from(sites.flatMap((s) => [...s.a.dataSync<"float32">()]));
        for (let i = 0; i < rows.length; i++) windowSum[i] += rows[i];
        windowSteps++;
        let targets: Float32Array[] | null = null;
        let raw = 0;
        if (task > 0 && selector !== null) {
          const { selection } = pullArms(selector, {
            t,
            T,
            stored,
            root,
            rng,
            current: acc.value(),
          });
          targets = selectedRows(stored, selection, { dim: D });
          let l1 = 0;
          raw = 0;
          for (let d = 0; d < M; d++) {
            for (let j = 0; j < D; j++) {
              const p = Math.fround(stored[selection[d]][d * D + j]);
              l1 += Math.abs(rows[d * D + j] - p);
              raw += rows[d * D + j] * p;
            }
          }
          if (options.regularizer === "paper_l1") expectedPenalties.push(options.lambda * l1);
        }
        // loss(): inside the tape, with a stand-in task loss.
        tf.tidy(() => {
          const { value } = tf.variableGrads(() => {
            const taskLoss = tf.mean(tf.square(tf.addN(sites.map((s) => s.a)))) as tf.Scalar;
            if (targets === null || options.regularizer === "none") return taskLoss;
            if (options.regularizer === "code_inner_product") {
              const tau = regularizerTau(t, T, options);
              const r = codeRegularizer(sites.map((s) => s.a), {
                targets,
                taskLoss: taskLoss.dataSync()[0],
                tau,
                fixSign: options.fixSign,
              });
              penalties.push(r.dataSync()[0]);
              // Spec §4.6 by hand: R = raw·L·τ/(raw + 1e-5), τ = λ·t/T (ramp), L the task loss.
              const tauHand = options.lambda * t / T;
              expectedPenalties.push(raw * taskLoss.dataSync()[0] * tauHand / (raw + 1e-5));
              return tf.sub(taskLoss, r) as tf.Scalar;
            }
            const p = paperL1Penalty(sites.map((s) => s.a), { targets, lambda: options.lambda });
            penalties.push(p.dataSync()[0]);
            return tf.add(taskLoss, p) as tf.Scalar;
          }, sites.map((s) => s.a));
          value.dataSync();
        });
        // The optimiser step: drift the A values.
        for (const s of sites) {
          tf.tidy(() =>
            s.a.assign(tf.add(s.a, tf.randomNormal(shape, 0, 0.05, "float32", rng.seed())))
          );
        }
      }
    }
    stored.push(acc.snapshot());
    const scale = options.accumulatorScale === "modules" ? M : 1;
    expectedStored.push(windowSum.map((v) => (scale * v) / windowSteps));
    root = buildTree(stored, { numSites: M, dim: D, ...options });
  }
  assertEquals(tf.memory().numTensors, before);
  sites.forEach((s) => s.a.dispose());
  return { root: root!, penalties, stored, expectedStored, expectedPenalties, M };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  assertEquals(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert(
      Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `entry ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

Deno.test("code mode: stored = M × the last epoch's mean A rows; R = raw·L·τ/(raw + 1e-5) by hand", () => {
  const { root, penalties, stored, expectedStored, expectedPenalties, M } = simulate({}, "lm");
  assertEquals(M, 3);
  stored.forEach((v, k) => assertClose(v, expectedStored[k], 1e-6));
  assertEquals(penalties.length, 2 * 2 * 5);
  assertClose(penalties, expectedPenalties, 1e-4);
  assertEquals(JSON.parse(JSON.stringify(treeToJson(root))).tasks, [0, 1, 2]);
});

Deno.test("paper mode, A-value signatures: stored = the task's mean A rows; penalty = λ·Σ|A − P| by hand", () => {
  const paper = simulate({ mode: "paper", signatureSource: "lora_a_values" }, "vit");
  paper.stored.forEach((v, k) => assertClose(v, paper.expectedStored[k], 1e-6));
  assertEquals(paper.penalties.length, 2 * 2 * 5);
  assertClose(paper.penalties, paper.expectedPenalties, 1e-5);
  // Table 5 (i): no penalty, but the signatures are still the plain code ones.
  const plain = simulate({ regularizer: "none", selection: "none" }, "lm");
  assertEquals(plain.penalties.length, 0);
  plain.stored.forEach((v, k) => assertClose(v, plain.expectedStored[k], 1e-6));
  // Table 5 (ii): the code penalty with random selection, by the same hand formula.
  const random = simulate({ selection: "random" }, "lm");
  assertClose(random.penalties, random.expectedPenalties, 1e-4);
});
