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
  for (let task = 0; task < 3; task++) {
    selector?.reset();
    if (!options.resetPerEpoch) acc.reset(epochs * T);
    for (let epoch = 0; epoch < epochs; epoch++) {
      if (options.resetPerEpoch) {
        acc.reset(T);
        selector?.reset();
      }
      for (let t = 0; t < T; t++) {
        // beforeStep: the step's signature row (A values here), then the arm pull.
        const flat = flattenSites(
          sites.map((s) => ({ name: s.name, values: s.a.dataSync<"float32">() })),
        );
        acc.add(flat.data);
        let targets: Float32Array[] | null = null;
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
    root = buildTree(stored, { numSites: M, dim: D, ...options });
  }
  assertEquals(tf.memory().numTensors, before);
  sites.forEach((s) => s.a.dispose());
  return { root: root!, penalties, stored };
}

Deno.test("code mode: three tasks end with a tree over all tasks, no leaks", () => {
  const { root, penalties, stored } = simulate({}, "lm");
  assertEquals(root.tasks, [0, 1, 2]);
  assertEquals(stored.length, 3);
  assertEquals(penalties.length, 2 * 2 * 5);
  assert(penalties.every(Number.isFinite));
  assertEquals(JSON.parse(JSON.stringify(treeToJson(root))).tasks, [0, 1, 2]);
});

Deno.test("paper mode with A-value signatures and the Table 5 ablations run end to end", () => {
  const paper = simulate({ mode: "paper", signatureSource: "lora_a_values" }, "vit");
  assertEquals(paper.root.tasks, [0, 1, 2]);
  assert(paper.penalties.every((p) => p > 0));
  const plain = simulate({ regularizer: "none", selection: "none" }, "lm");
  assertEquals(plain.penalties.length, 0);
  const random = simulate({ selection: "random" }, "lm");
  assertEquals(random.penalties.length, 20);
});
