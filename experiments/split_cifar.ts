/**
 * `deno task exp:split-cifar` — Split CIFAR-100, class-incremental, ViT + LoRA.
 *
 * The declarative spec below is the default run: the embedded synthetic
 * stand-in for CIFAR-100 (100 classes in 20 superclasses, no download), 10
 * tasks of 10 classes in an order drawn from order seed 0, the `tiny6-p8` ViT
 * (6 blocks) pre-trained by the harness on disjoint synthetic classes and
 * frozen, with the paper's ViT LoRA geometry: k and v of blocks 0–4 (HiDe-LoRA's
 * `lora_depth=5`; TreeLoRA's tree depth 5, one level per block). The methods
 * tell the paper's vision story (spec §8.1): SeqLoRA, HiDe-LoRA and TreeLoRA
 * inside HiDe-LoRA at full and at reduced epochs (the control, HiDe-LoRA at the
 * reduced epochs, is in `treelora_vit.ts`); the plain shared-adapter
 * `treelora` stays available by name (`--methods treelora`). Flags override any
 * field; `--help` lists them.
 *
 * @module
 */

import { runCli } from "../lib/run/cli.ts";
import { type SplitCifarSpec, VIT_TRACK } from "../lib/tracks/vit_class_incremental.ts";

/** The default Split CIFAR-100 experiment. */
export const SPEC: SplitCifarSpec = {
  experiment: "split-cifar",
  data: {
    dir: null,
    synthetic: { seed: 0, trainPerClass: 100, testPerClass: 20 },
    numTasks: 10,
    orderSeed: 0,
  },
  backbone: {
    preset: "tiny6-p8",
    lora: { rank: 8, alpha: 32, dropout: 0.1 },
    loraBlocks: "first:5",
    loraTargets: ["k", "v"],
    pretrain: {
      seed: 1,
      trainPerClass: 100,
      testPerClass: 10,
      steps: 800,
      batchSize: 64,
      lr: 1e-3,
    },
  },
  methods: [
    { name: "seqlora" },
    { name: "hide-lora" },
    { name: "hide-treelora" },
    { name: "hide-treelora", label: "hide-treelora-reduced-epochs", epochs: 2 },
  ],
  train: {
    epochs: 4,
    batchSize: 32,
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    clipNorm: 1.0,
    resetOptimizerPerTask: true,
    maxStepsPerEpoch: null,
    logEvery: 5,
    evalBatchSize: 200,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    curveEvery: 10,
    curveImages: 100,
  },
  seed: 0,
  seeds: { data: 0, init: 0, method: 0 },
  backend: "auto",
  output: { resultsDir: "results", cacheDir: ".cache", runId: null, overwrite: false },
  quiet: false,
};

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, { spec: SPEC, track: VIT_TRACK }));
}
