/**
 * `deno task exp:treelora-vit` — the paper's ViT comparison (spec §8.1, Table 1 and Fig. 4) at
 * small scale, with the epoch question answered: the default Split CIFAR-100 experiment
 * (`split_cifar.ts`: data, `tiny6-p8` backbone, LoRA on k and v of blocks 0–4, schedule) with
 * three run seeds and every method the claim needs:
 *
 * - `seqlora` and the plain shared-adapter `treelora` (the LLM code's pipeline on the ViT);
 * - `hide-lora` at the full schedule (4 epochs per task) and at the reduced one (2 epochs);
 * - `hide-treelora` (TreeLoRA inside HiDe-LoRA, code mode) at both schedules.
 *
 * Paper mode inside HiDe-LoRA: `--methods hide-treelora --method-options '{"hide-treelora":{"mode":"paper"}}'`.
 *
 * `hide-lora-reduced-epochs` is the control: how much of a reduced-epoch TreeLoRA's speed-up
 * the shorter schedule alone gives. Flags override any field (`--data-dir` for real images).
 *
 * @module
 */

import { runCli } from "../lib/run/cli.ts";
import { type SplitCifarSpec, VIT_TRACK } from "../lib/tracks/vit_class_incremental.ts";
import { SPEC as SPLIT_CIFAR } from "./split_cifar.ts";

/** The reduced schedule of the paper's "fewer epochs" (half the default 4). */
const REDUCED_EPOCHS = 2;

/** The TreeLoRA-in-HiDe comparison. */
export const SPEC: SplitCifarSpec = {
  ...SPLIT_CIFAR,
  methods: [
    { name: "seqlora" },
    { name: "treelora" },
    { name: "hide-lora" },
    { name: "hide-lora", label: "hide-lora-reduced-epochs", epochs: REDUCED_EPOCHS },
    { name: "hide-treelora" },
    { name: "hide-treelora", label: "hide-treelora-reduced-epochs", epochs: REDUCED_EPOCHS },
  ],
  train: { ...SPLIT_CIFAR.train, curveEvery: 5 },
  seedList: [0, 1, 2],
};

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, { spec: SPEC, track: VIT_TRACK }));
}
