/**
 * `deno task exp:olora-table10 --data-dir DIR --pretrain-data DIR` — the paper's Table 10
 * (spec §8.2: the O-LoRA benchmark, orders 1–3) at small scale: SeqLoRA, OGD, GEM, O-LoRA,
 * HiDe-LoRA and TreeLoRA on orders `olora-1`, `olora-2`, `olora-3`, three run seeds each, every
 * method with the same epochs (as in the paper, where every method trains 1 epoch per task).
 *
 * The data come from `--data-dir` (the O-LoRA benchmark in TRACE format, e.g.
 * `../shared/data/olora`); the decoder (`bpe-tiny`: byte-tiny's shape with a byte-level BPE of
 * 2048 symbols) is pre-trained by the harness on the training texts of the benchmark's other
 * eleven tasks (`--pretrain-data`, the same folder; the stream's four tasks are left out and the
 * overlap check is recorded in config.json), and the BPE is trained on that corpus too.
 * FIX (in-context learning) is left out: its demonstrations do not fit a 128-token context.
 *
 * REPORT.md puts the paper's Table 10 beside the run and checks its orderings.
 *
 * @module
 */

import { runCli } from "../lib/run/cli.ts";
import { LM_TRACK, type TraceSpec } from "../lib/tracks/lm_trace.ts";
import { SPEC as TRACE } from "./trace.ts";

/** The Table 10 comparison. */
export const SPEC: TraceSpec = {
  ...TRACE,
  experiment: "trace",
  data: {
    ...TRACE.data,
    // Set by --data-dir (required): the benchmark is not embedded.
    dirs: null,
    tasks: ["dbpedia", "amazon", "yahoo", "agnews"],
    order: "olora-1",
    maxTrain: 128,
    maxTest: 100,
  },
  orderList: ["olora-1", "olora-2", "olora-3"],
  model: {
    ...TRACE.model,
    preset: "bpe-tiny",
    tokenizer: "bpe-2048",
    pretrain: {
      ...TRACE.model.pretrain,
      steps: 1500,
      lr: 3e-3,
      warmupSteps: 100,
      corpusDirs: null, // set by --pretrain-data (required)
      proseCharacters: 0, // the O-LoRA tasks' own texts replace the default corpus
      corpusExclude: ["dbpedia", "amazon", "yahoo", "agnews"],
    },
  },
  methods: [
    { name: "seqlora" },
    { name: "ogd" },
    { name: "gem" },
    { name: "o-lora" },
    { name: "hide-lora" },
    { name: "treelora" },
  ],
  train: { ...TRACE.train, epochs: 3, maxPromptLength: 120 },
  seedList: [0, 1, 2],
};

if (import.meta.main) {
  const args = Deno.args;
  const given = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  if (!given("--help") && !given("--resume")) {
    for (const flag of ["--data-dir", "--pretrain-data"]) {
      if (!given(flag)) {
        console.error(
          `error: ${flag} DIR is required: the O-LoRA benchmark in TRACE format ` +
            "(<Task>/{train,test}.json), e.g. ../shared/data/olora",
        );
        Deno.exit(2);
      }
    }
  }
  Deno.exit(await runCli(Deno.args, { spec: SPEC, track: LM_TRACK }));
}
