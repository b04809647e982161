/**
 * `deno task exp:real-images --data-dir DIR` — the ViT comparison on real images with a
 * backbone that has seen real images (issue 21), a small stand-in for the paper's setting
 * (spec §8.1: a ViT pre-trained on ImageNet-21K, then a stream of classes it was not trained on).
 *
 * `DIR` is a real data set in the CIFAR-100 binary layout with classes 0…n−1 (the committed run
 * uses `../shared/data/tinyimagenet100_32`: 100 Tiny-ImageNet classes at 32×32, 80 train and 20
 * test images each). Its classes are divided by a seeded draw (lib/data/pretrain_split.ts):
 *
 * - 50 classes pre-train the `tiny6-p8` backbone, supervised, 3000 steps of 64 images with random
 *   crop (padding 4) and horizontal flip (lib/data/augment.ts);
 * - the other 50 are the class-incremental stream, 5 tasks × 10 classes; no class is in both
 *   (checked, and written to `config.json`);
 * - a linear probe of the frozen features on the stream's classes (40 training images per
 *   class, every test image) says how much the features transfer before any CL training.
 *
 * Methods: SeqLoRA (lower bound), HiDe-LoRA at 4 and 2 epochs per task, TreeLoRA inside HiDe-LoRA
 * (code mode) at 4 and 2 epochs, L2P, DualPrompt and Joint (upper bound); three run seeds.
 * Without `--data-dir` the run stops before training with an error that says so.
 *
 * @module
 */

import { runCli } from "../lib/run/cli.ts";
import { type SplitCifarSpec, VIT_TRACK } from "../lib/tracks/vit_class_incremental.ts";
import { SPEC as SPLIT_CIFAR } from "./split_cifar.ts";

/** The reduced schedule of the paper's "fewer epochs" (half the default 4). */
const REDUCED_EPOCHS = 2;

/** The real-image comparison (needs `--data-dir`). */
export const SPEC: SplitCifarSpec = {
  ...SPLIT_CIFAR,
  data: {
    ...SPLIT_CIFAR.data,
    numTasks: 5,
    pretrainSplit: { classes: 50, seed: 0 },
  },
  backbone: {
    ...SPLIT_CIFAR.backbone,
    pretrain: {
      ...SPLIT_CIFAR.backbone.pretrain,
      steps: 3000,
      augment: { padding: 4, flip: true },
    },
    probe: { trainPerClass: 40, epochs: 300 },
  },
  methods: [
    { name: "seqlora" },
    { name: "hide-lora" },
    { name: "hide-lora", label: "hide-lora-reduced-epochs", epochs: REDUCED_EPOCHS },
    { name: "hide-treelora" },
    { name: "hide-treelora", label: "hide-treelora-reduced-epochs", epochs: REDUCED_EPOCHS },
    { name: "l2p" },
    { name: "dualprompt" },
    { name: "joint" },
  ],
  seedList: [0, 1, 2],
};

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, { spec: SPEC, track: VIT_TRACK }));
}
