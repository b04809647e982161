/**
 * `deno task exp:trace` — continual instruction tuning of a decoder LM with
 * LoRA on the TRACE benchmark format (spec §8.2, §9).
 *
 * The default needs no data: eight synthetic tasks that mirror TRACE's task
 * types and metrics (lib/data/synthetic_text.ts), a byte-level LLaMA-style
 * decoder (`byte-tiny`: dim 128, 4 layers, LoRA r 8 / α 32 / dropout 0.1 on q
 * and v of every layer = 8 TreeLoRA sites) pre-trained by the harness on a
 * generic synthetic corpus mixed with as many characters of real English
 * prose (the start of *Moby-Dick*, shipped in lib/data/text/) and frozen.
 * Methods, with the paper's epoch budgets (spec §5.1): SeqLoRA with the LoRA
 * baselines' 5,3,7,5,3,5,5,7; TreeLoRA (code mode, λ 0.5) with its reduced
 * 2,1,3,2,1,2,2,3; and TreeLoRA with the baselines' budget, labelled `treelora-equal-epochs`. The task sets
 * are small (32 train / 16 test per task) so the default finishes in minutes
 * on 2 CPU cores. Greedy decoding. `--data-dir ../shared/data/trace
 * --tasks …` runs real TRACE-500 tasks; `--data-dir ../shared/data/olora
 * --order olora-1` the O-LoRA benchmark.
 *
 * @module
 */

import { runCli } from "../lib/run/cli.ts";
import { LM_TRACK, type TraceSpec } from "../lib/tracks/lm_trace.ts";

/** The default TRACE experiment. */
export const SPEC: TraceSpec = {
  experiment: "trace",
  data: {
    dirs: null,
    tasks: [],
    order: null,
    synthetic: { seed: 0, train: 32, eval: 8, test: 16 },
    maxTrain: null,
    maxTest: null,
    missingTrain: "error",
  },
  model: {
    preset: "byte-tiny",
    tokenizer: "byte",
    lora: { rank: 8, alpha: 32, dropout: 0.1 },
    pretrain: {
      seed: 1,
      steps: 150,
      batchSize: 16,
      seqLength: 128,
      lr: 1e-3,
      warmupSteps: 15,
      heldOutFraction: 0.05,
      corpusLines: 4000,
      proseCharacters: 130_000,
    },
  },
  methods: [
    { name: "seqlora" },
    { name: "treelora", label: "treelora", epochs: [2, 1, 3, 2, 1, 2, 2, 3] },
    { name: "treelora", label: "treelora-equal-epochs" },
  ],
  train: {
    epochs: [5, 3, 7, 5, 3, 5, 5, 7],
    batchSize: 8,
    lr: 5e-3,
    beta1: 0.9,
    beta2: 0.95,
    clipNorm: 1.0,
    resetOptimizerPerTask: true,
    maxStepsPerEpoch: null,
    logEvery: 1,
    maxLength: 128,
    maxPromptLength: 112,
    maxNewTokens: 40,
    evalBatchSize: 16,
    temperature: 0,
    maxTestExamples: null,
  },
  seed: 0,
  seeds: { data: 0, init: 0, method: 0 },
  backend: "auto",
  output: { resultsDir: "results", cacheDir: ".cache", runId: null, overwrite: false },
  quiet: false,
};

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, { spec: SPEC, track: LM_TRACK }));
}
