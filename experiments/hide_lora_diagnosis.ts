/**
 * `deno task exp:hide-lora-diagnosis` — why HiDe-LoRA's just-trained task's accuracy falls task
 * after task (the diagonal of its accuracy matrix), measured: the default Split CIFAR-100
 * experiment (`split_cifar.ts`) with `hide-lora` under each task-identity (TII) rule and
 * ablation, one run seed (override with `--seeds`). Every run records the TII accuracy per
 * task (`task_identity.csv`); REPORT.md tabulates it beside the accuracy matrices.
 *
 * - `hide-lora` — the defaults: HiDe's TII head (SGD on features sampled from the class
 *   Gaussians, warm-started from the previous task's head, new classes at zero), 30 epochs,
 *   classifier alignment 30 epochs;
 * - `tii-head-10-epochs` — the TII head and the alignment at 10 epochs (the harness's earlier
 *   defaults);
 * - `tii-lda` — the closed-form Gaussian discriminant instead of the trained head;
 * - `no-alignment` — no classifier alignment (its effect on the accuracy).
 *
 * Further variants are one option away (`--method-options`): `tiiRule: "nearest-mean"`,
 * `tiiFeatures: "pretrained"`, `adapterInit: "fresh"`.
 *
 * @module
 */

import { runCli } from "../lib/run/cli.ts";
import { type SplitCifarSpec, VIT_TRACK } from "../lib/tracks/vit_class_incremental.ts";
import { SPEC as SPLIT_CIFAR } from "./split_cifar.ts";

/** The HiDe-LoRA diagnosis. */
export const SPEC: SplitCifarSpec = {
  ...SPLIT_CIFAR,
  methods: [
    { name: "hide-lora" },
    {
      name: "hide-lora",
      label: "tii-head-10-epochs",
      options: { tiiEpochs: 10, alignEpochs: 10 },
    },
    { name: "hide-lora", label: "tii-lda", options: { tiiRule: "lda" } },
    { name: "hide-lora", label: "no-alignment", options: { alignEpochs: 0 } },
  ],
  train: { ...SPLIT_CIFAR.train, curveEvery: 0 },
};

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, { spec: SPEC, track: VIT_TRACK }));
}
