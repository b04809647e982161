/**
 * The language-model track (TRACE and the O-LoRA benchmark): continual
 * instruction tuning of a decoder LM with LoRA on q and v of every layer
 * (spec §8.2, §9).
 *
 * The track resolves the task stream (the embedded synthetic tasks, or
 * TRACE/O-LoRA JSON from `--data-dir`), the tokenizer and the decoder (the
 * harness's preset pre-trained on a generic corpus disjoint from the tasks,
 * cached, or a Hugging Face checkpoint from `--model`), and trains one method
 * on one stream with the LM trainer, which after every task generates answers
 * for every task seen so far (greedy by default), scores them with each task's
 * metric, and writes the score row, the predictions (JSONL) and the timings at
 * once. The runner (`lib/run/runner.ts`) does the rest.
 *
 * @module
 */

import { join, resolve } from "@std/path";
import { SYNTHETIC_TASKS, syntheticCorpus, writeSyntheticTrace } from "../data/synthetic_text.ts";
import {
  parseTaskList,
  readTraceStream,
  TASK_ORDERS,
  type TaskOrderName,
  type TraceTaskData,
} from "../data/trace.ts";
import { hashJson } from "../data/synthetic_cache.ts";
import { PROSE_SOURCE, proseParagraphs, readProse } from "../data/prose_corpus.ts";
import { corpusOverlap, readPretrainCorpus } from "../data/pretrain_corpus.ts";
import { exists, sha256Hex, writeFileAtomic, writeJsonAtomic } from "../io.ts";
import { BPE_TRAINER_VERSION, SPECIAL_TOKENS, trainBpe } from "../text/bpe_trainer.ts";
import type { LoraConfig } from "../models/backbone.ts";
import type { TensorMap } from "../models/safetensors.ts";
import { formatBytes } from "../models/safetensors_index.ts";
import { createDecoder, DECODER_PRESETS, type DecoderConfig } from "../models/decoder.ts";
import { readHfDecoderCheckpoint } from "../models/hf_decoder.ts";
import { scoreTask, type TraceMetric } from "../metrics/trace_metrics.ts";
import { Rng } from "../random.ts";
import { ByteTokenizer } from "../text/byte_tokenizer.ts";
import { loadHfTokenizer } from "../text/hf_tokenizer.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { type LmTask, type LmTrainConfig, trainLmIncremental } from "../train/lm_incremental.ts";
import { type LmPretrainConfig, pretrainedDecoder } from "../train/lm_pretrain.ts";
import type { Progress } from "../train/progress.ts";
import { numberInRange, positiveInt } from "../run/cli.ts";
import type { FlagSpec, FlagValues } from "../flags.ts";
import { type ExperimentResult, runExperiment } from "../run/runner.ts";
import type { ExperimentSpec, StreamOrder } from "../run/spec.ts";
import type { ExperimentTrack, PreparedTrack } from "../run/track.ts";

/** Everything a TRACE run depends on. */
export interface TraceSpec extends ExperimentSpec {
  /** The task stream. */
  data: {
    /** Directories with `<Task>/{train,eval,test}.json` (first match wins), or null for synthetic tasks. */
    dirs: string[] | null;
    /** Task names in training order (for real data); the synthetic run uses its own eight. */
    tasks: string[];
    /** The named order the tasks came from, when one was used (recorded). */
    order: string | null;
    /** Synthetic generator settings (used when dirs is null). */
    synthetic: { seed: number; train: number; eval: number; test: number };
    /** Cap on training examples per task (null = all). */
    maxTrain: number | null;
    /** Cap on test examples per task (null = all). */
    maxTest: number | null;
    /** Train on eval.json when train.json is missing (MeetingBank in the TRACE-500 copy). */
    missingTrain: "error" | "eval";
  };
  /** The decoder and its tokenizer. */
  model: {
    /** A key of DECODER_PRESETS. */
    preset: string;
    /**
     * A Hugging Face LLaMA-family checkpoint directory (config.json, safetensors, tokenizer.json)
     * to use instead of the pre-trained preset (`--model DIR`); null = the preset.
     */
    dir?: string | null;
    /** `byte` (byte-level, no files) or a path to a Hugging Face tokenizer.json. */
    tokenizer: string;
    /** LoRA on q and v of every layer. */
    lora: LoraConfig;
    /**
     * Pre-training: on the generic synthetic corpus (`corpusLines` lines), or, with `corpusDirs`
     * (`--pretrain-data DIR`), on the training texts of every task folder there that is not in
     * the stream or in `corpusExclude` (lib/data/pretrain_corpus.ts), `corpusMaxPerTask` examples
     * each (null = all). `proseCharacters` characters of the shipped English prose
     * (lib/data/prose_corpus.ts, from the start of *Moby-Dick*) are mixed into the synthetic
     * corpus (0 or absent = none; refused with `corpusDirs`, which replaces both).
     */
    pretrain: LmPretrainConfig & {
      corpusLines: number;
      proseCharacters?: number | null;
      corpusDirs?: string[] | null;
      corpusMaxPerTask?: number | null;
      corpusExclude?: string[] | null;
    };
  };
  /** Optimisation and decoding. */
  train: LmTrainConfig;
  /**
   * Several named task orders (`--orders olora-1,olora-2,olora-3`, with --data-dir): all orders
   * must have the same number of tasks. Null = `data.order` / `data.tasks` only.
   */
  orderList?: string[] | null;
}

/** `--tokenizer bpe-N`: a byte-level BPE of N symbols trained by the harness (lib/text/bpe_trainer.ts). */
const BPE_TOKENIZER = /^bpe-([0-9]+)$/;

/**
 * Decoder shapes of the LM track beyond lib/models/decoder.ts's presets. `bpe-tiny` is byte-tiny's
 * shape (dim 128, 4 layers, 4 heads, SwiGLU 352, untied head, context 128) with the vocabulary of
 * `--tokenizer bpe-2048` (2048 symbols + BOS, EOS, PAD).
 */
export const LM_PRESETS: Readonly<Record<string, DecoderConfig>> = Object.freeze({
  ...DECODER_PRESETS,
  "bpe-tiny": { ...DECODER_PRESETS["byte-tiny"], vocabSize: 2051 },
});

/** What config.json says of a tokenizer the harness trained. */
interface TokenizerRecord {
  kind: "byte-level" | "bpe-trained" | "file";
  description: string;
  path?: string;
  sha256?: string;
  vocabSize: number;
  bytesPerToken?: number;
}

/**
 * The run's tokenizer: bytes, a tokenizer.json file, or (`bpe-N`) a byte-level BPE trained on the
 * pre-training corpus, cached under `<cacheDir>/tokenizers/` by the corpus and N.
 */
async function loadTokenizer(
  spec: TraceSpec,
  corpus: { documents: string[]; record: CorpusRecord },
  progress: Progress,
): Promise<{ tokenizer: Tokenizer; record: TokenizerRecord }> {
  const name = spec.model.tokenizer;
  if (name === "byte") {
    const tokenizer = new ByteTokenizer();
    return {
      tokenizer,
      record: { kind: "byte-level", description: "UTF-8 bytes", vocabSize: tokenizer.vocabSize },
    };
  }
  const bpe = BPE_TOKENIZER.exec(name);
  if (!bpe) {
    const tokenizer = await loadHfTokenizer(name);
    return {
      tokenizer,
      record: { kind: "file", description: name, path: name, vocabSize: tokenizer.vocabSize },
    };
  }
  const symbols = Number(bpe[1]);
  if (!Number.isInteger(symbols) || symbols < 256 || symbols > 65_000) {
    throw new Error(`--tokenizer ${name}: N must be an integer in [256, 65000]`);
  }
  const key = await hashJson({
    v: BPE_TRAINER_VERSION,
    symbols,
    corpus: await hashJson(corpus.documents),
  });
  const dir = join(spec.output.cacheDir, "tokenizers", `bpe-${symbols}-${key}`);
  const path = join(dir, "tokenizer.json");
  if (!(await exists(path))) {
    const t0 = performance.now();
    const trained = trainBpe(corpus.documents, { vocabSize: symbols });
    await writeFileAtomic(path, JSON.stringify(trained.json));
    await writeJsonAtomic(join(dir, "tokenizer_config.json"), {
      bos_token: SPECIAL_TOKENS[0],
      eos_token: SPECIAL_TOKENS[1],
      pad_token: SPECIAL_TOKENS[2],
    });
    progress.log(
      `tokenizer: trained a byte-level BPE of ${symbols} symbols on the pre-training corpus ` +
        `(${trained.words} distinct words, ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s): ${path}`,
    );
  }
  const tokenizer = await loadHfTokenizer(path);
  let tokens = 0;
  let bytes = 0;
  const encoder = new TextEncoder();
  for (const doc of corpus.documents.slice(0, 500)) {
    tokens += tokenizer.encode(doc).length;
    bytes += encoder.encode(doc).length;
  }
  return {
    tokenizer,
    record: {
      kind: "bpe-trained",
      description:
        `byte-level BPE (GPT-2 scheme, lib/text/bpe_trainer.ts v${BPE_TRAINER_VERSION}) ` +
        `of ${symbols} symbols + ${
          SPECIAL_TOKENS.join(", ")
        }, trained by the harness on the pre-training ` +
        `corpus (${corpus.record.kind}, ${corpus.record.documents} documents)`,
      path,
      sha256: await sha256Hex(await Deno.readFile(path)),
      vocabSize: tokenizer.vocabSize,
      bytesPerToken: tokens > 0 ? Math.round((bytes / tokens) * 100) / 100 : undefined,
    },
  };
}

async function loadTasks(spec: TraceSpec, progress: Progress, taskList: string[]): Promise<{
  tasks: TraceTaskData[];
  description: string;
}> {
  const d = spec.data;
  if (d.dirs === null) {
    const key = await hashJson({ v: 1, ...d.synthetic });
    const dir = join(spec.output.cacheDir, "data", `synthetic-trace-${key}`);
    if (!(await exists(join(dir, "synthetic_trace.json")))) {
      await writeSyntheticTrace(dir, d.synthetic);
    }
    const files = await readTraceStream(dir, {
      tasks: SYNTHETIC_TASKS,
      maxTrain: d.maxTrain ?? undefined,
      maxTest: d.maxTest ?? undefined,
    });
    progress.log(`data: synthetic TRACE-like tasks at ${dir}`);
    return {
      tasks: files,
      description:
        `synthetic stand-in for TRACE (lib/data/synthetic_text.ts, seed ${d.synthetic.seed}; ` +
        `eight tasks mirroring TRACE's task types and metrics, not real TRACE data), read from ${dir}`,
    };
  }
  const files = await readTraceStream(d.dirs, {
    tasks: taskList,
    maxTrain: d.maxTrain ?? undefined,
    maxTest: d.maxTest ?? undefined,
    missingTrain: d.missingTrain,
  });
  for (const f of files) for (const n of f.notes) progress.log(`data: ${f.name}: ${n}`);
  return {
    tasks: files,
    description: `TRACE-format JSON from ${d.dirs.map((x) => resolve(x)).join(", ")}${
      d.order ? ` (order ${d.order})` : ""
    }${
      d.maxTrain || d.maxTest
        ? `, capped at ${d.maxTrain ?? "all"} train / ${d.maxTest ?? "all"} test`
        : ""
    }`,
  };
}

/** Score a task's predictions with its TRACE metric (0–100; empty predictions score 0). */
function score(
  metric: string,
  predictions: string[],
  references: string[],
  prompts: string[],
): number {
  return scoreTask(
    metric as TraceMetric,
    predictions.map((p, i) => ({ prediction: p, reference: references[i], source: prompts[i] })),
  );
}

/** What config.json says of the pre-training corpus. */
interface CorpusRecord {
  kind: "synthetic" | "synthetic+prose" | "real";
  description: string;
  documents: number;
  characters: number;
  tasks?: { name: string; dir: string; documents: number }[];
  excluded?: string[];
  prose?: {
    title: string;
    author: string;
    file: string;
    sha256: string;
    paragraphs: number;
    characters: number;
  };
  overlap: { checkedStreamExamples: number; overlapping: number; rule: string };
}

/**
 * The pre-training documents (synthetic, or the non-stream tasks under `--pretrain-data`) and
 * their record; refuses a corpus that shares an example with any task of any order of the stream.
 */
async function pretrainCorpus(
  spec: TraceSpec,
  streams: LmTask[][],
): Promise<{ documents: string[]; record: CorpusRecord }> {
  const p = spec.model.pretrain;
  const streamTasks = new Map<string, LmTask>();
  for (const list of streams) for (const t of list) streamTasks.set(t.name, t);
  let documents: string[];
  let record: Omit<CorpusRecord, "overlap">;
  let overlap;
  if (p.corpusDirs && p.corpusDirs.length > 0) {
    if ((p.proseCharacters ?? 0) > 0) {
      throw new Error(
        "the shipped prose is mixed into the synthetic corpus only; a --pretrain-data corpus " +
          "replaces both (drop --pretrain-prose, or set proseCharacters to 0)",
      );
    }
    const corpus = await readPretrainCorpus(p.corpusDirs, {
      exclude: [...streamTasks.keys(), ...(p.corpusExclude ?? [])],
      maxPerTask: p.corpusMaxPerTask ?? undefined,
    });
    documents = corpus.documents;
    overlap = corpusOverlap(corpus.examples, [...streamTasks.values()]);
    record = {
      kind: "real",
      description: `training texts (prompt + answer) of ${corpus.tasks.length} task folders ` +
        `under ${p.corpusDirs.join(", ")} that are not in the stream (${
          corpus.tasks.map((t) => `${t.name} ${t.documents}`).join(", ")
        }; left out as stream tasks or by --pretrain-exclude: ${
          corpus.excluded.join(", ") || "none"
        }); ` +
        `${corpus.documents.length} documents, ${corpus.characters} characters`,
      documents: corpus.documents.length,
      characters: corpus.characters,
      tasks: corpus.tasks,
      excluded: corpus.excluded,
    };
  } else {
    const synthetic = syntheticCorpus({ seed: p.seed, lines: p.corpusLines });
    const syntheticCharacters = synthetic.reduce((s, d) => s + d.length, 0);
    const prose = (p.proseCharacters ?? 0) > 0
      ? proseParagraphs(await readProse(), { maxCharacters: p.proseCharacters! })
      : [];
    const proseCharacters = prose.reduce((s, d) => s + d.length, 0);
    // One shuffled list, so that both kinds are spread over the packed stream and the held-out
    // tail (the last heldOutFraction of the documents) holds both.
    documents = prose.length > 0
      ? new Rng((p.seed ^ 0x9e05) >>> 0).shuffle([...synthetic, ...prose])
      : synthetic;
    overlap = corpusOverlap(documents, [...streamTasks.values()]);
    const syntheticPart =
      `the generic synthetic corpus of lib/data/synthetic_text.ts (seed ${p.seed}, ` +
      `${p.corpusLines} lines, ${syntheticCharacters} characters): template sentences, ` +
      "arithmetic, facts, code-like lines and German sentences, not real text";
    record = prose.length === 0
      ? {
        kind: "synthetic",
        description: syntheticPart,
        documents: documents.length,
        characters: syntheticCharacters,
      }
      : {
        kind: "synthetic+prose",
        description: `${syntheticPart}; mixed (shuffled, seed ${p.seed}) with the first ` +
          `${prose.length} paragraphs (${proseCharacters} characters) of ${PROSE_SOURCE.author}'s ` +
          `${PROSE_SOURCE.title} (${PROSE_SOURCE.year}; ${PROSE_SOURCE.license}; ${PROSE_SOURCE.file})`,
        documents: documents.length,
        characters: syntheticCharacters + proseCharacters,
        prose: {
          title: PROSE_SOURCE.title,
          author: PROSE_SOURCE.author,
          file: PROSE_SOURCE.file,
          sha256: PROSE_SOURCE.sha256,
          paragraphs: prose.length,
          characters: proseCharacters,
        },
      };
  }
  if (overlap.overlaps.length > 0) {
    const shown = overlap.overlaps.slice(0, 5).map((h) => `${h.task} ${h.split} #${h.index}`);
    throw new Error(
      `the pre-training corpus contains ${overlap.overlaps.length} of the stream's ` +
        `${overlap.checked} examples (${shown.join(", ")}${
          overlap.overlaps.length > 5 ? ", …" : ""
        }; ${overlap.rule}); pre-training on them would leak the stream: not run`,
    );
  }
  return {
    documents,
    record: {
      ...record,
      overlap: {
        checkedStreamExamples: overlap.checked,
        overlapping: 0,
        rule: overlap.rule,
      },
    },
  };
}

/** The flags of the LM track (the common ones are in lib/run/cli.ts). */
export const LM_FLAGS: Record<string, FlagSpec> = {
  "data-dir": {
    type: "string-list",
    help:
      "TRACE-format directories (<Task>/{train,eval,test}.json), first match wins; default: synthetic tasks",
  },
  tasks: {
    type: "string",
    help: "task names and/or order names, comma-separated (with --data-dir)",
  },
  order: {
    type: "string",
    help: `a named order: ${Object.keys(TASK_ORDERS).join(", ")} (with --data-dir)`,
  },
  "max-train": { type: "number", help: "cap training examples per task (integer 1–10⁷)" },
  "max-test": { type: "number", help: "cap test examples per task (integer 1–10⁷)" },
  "missing-train": {
    type: "string",
    help: "error | eval: train on eval.json when train.json is missing",
  },
  "max-new-tokens": {
    type: "number",
    help: "generation length cap (integer 1–4096; generation also stops at the model's context)",
  },
  temperature: {
    type: "number",
    help: "0 = greedy (default); > 0 samples with the method seed (0–100)",
  },
  preset: {
    type: "string",
    help:
      "decoder preset (byte-tiny, byte-micro, bpe-tiny = byte-tiny's shape for --tokenizer bpe-2048, …)",
  },
  tokenizer: {
    type: "string",
    help:
      "byte (default), bpe-N (a byte-level BPE of N symbols trained on the pre-training corpus, cached), or a path to a Hugging Face tokenizer.json",
  },
  model: {
    type: "string",
    help:
      "a Hugging Face LLaMA-family checkpoint directory (config.json, safetensors, tokenizer.json)",
  },
  "pretrain-data": {
    type: "string-list",
    help:
      "pre-train on the train.json texts of the task folders here that are not in the stream (replaces the default corpus, the shipped prose included)",
  },
  "pretrain-prose": {
    type: "number",
    help:
      "characters of the shipped English prose (Moby-Dick, public domain) mixed into the synthetic pre-training corpus (integer 0–1191160; default 130000; 0 = none)",
  },
  "pretrain-exclude": {
    type: "string",
    help:
      "with --pretrain-data: task names (or order names) also left out of the corpus, comma-separated",
  },
  "pretrain-max-per-task": {
    type: "number",
    help: "with --pretrain-data: keep the first N training texts of each task (integer 1–10⁷)",
  },
  "max-length": {
    type: "number",
    help: "training sequence length in tokens (integer 2–the preset's context; default 128)",
  },
  "max-prompt-length": {
    type: "number",
    help: "prompt tokens kept at generation (left truncation; integer 1–max-length; default 112)",
  },
  "pretrain-seq-length": {
    type: "number",
    help: "tokens per pre-training window (integer 2–the preset's context; default 128)",
  },
  "pretrain-steps": {
    type: "number",
    help: "LM pre-training steps (cached by config hash) (integer 1–10⁶)",
  },
  "pretrain-lr": {
    type: "number",
    help: "LM pre-training peak learning rate (0 < lr ≤ 1; default 1e-3)",
  },
  "pretrain-warmup": {
    type: "number",
    help: "LM pre-training warm-up steps (integer 0–10⁶; default 15)",
  },
};

function applyLmFlags(spec: TraceSpec, f: FlagValues): void {
  const num = (k: string) => f[k] as number | undefined;
  if (f["data-dir"]) spec.data.dirs = f["data-dir"] as string[];
  if (f.order !== undefined) {
    const name = f.order as string;
    if (!(name in TASK_ORDERS)) {
      throw new Error(`--order ${name}: known orders ${Object.keys(TASK_ORDERS).join(", ")}`);
    }
    spec.data.tasks = [...TASK_ORDERS[name as TaskOrderName]];
    spec.data.order = name;
  }
  if (f.tasks !== undefined) {
    spec.data.tasks = parseTaskList(f.tasks as string);
    spec.data.order = null;
  }
  if (
    (f.tasks !== undefined || f.order !== undefined || f.orders !== undefined) && !f["data-dir"]
  ) {
    throw new Error("--tasks, --order and --orders select real tasks and need --data-dir");
  }
  if (num("max-train") !== undefined) {
    spec.data.maxTrain = positiveInt("max-train", num("max-train")!);
  }
  if (num("max-test") !== undefined) spec.data.maxTest = positiveInt("max-test", num("max-test")!);
  if (f["missing-train"] !== undefined) {
    const v = f["missing-train"] as string;
    if (v !== "error" && v !== "eval") {
      throw new Error(`--missing-train must be error or eval, got ${v}`);
    }
    spec.data.missingTrain = v;
  }
  if (num("max-new-tokens") !== undefined) {
    spec.train.maxNewTokens = positiveInt("max-new-tokens", num("max-new-tokens")!, {
      max: MAX_NEW_TOKENS,
    });
  }
  if (num("temperature") !== undefined) {
    spec.train.temperature = numberInRange("temperature", num("temperature")!, {
      min: 0,
      max: 100,
    });
  }
  if (f.model !== undefined) {
    if (f.preset !== undefined || f.tokenizer !== undefined) {
      throw new Error("--model brings its own shape and tokenizer: drop --preset / --tokenizer");
    }
    spec.model.dir = f.model as string;
  }
  if (f.preset !== undefined) spec.model.preset = f.preset as string;
  if (f.tokenizer !== undefined) spec.model.tokenizer = f.tokenizer as string;
  if (f["pretrain-data"] !== undefined) {
    spec.model.pretrain.corpusDirs = f["pretrain-data"] as string[];
  }
  if (num("pretrain-prose") !== undefined) {
    if (spec.model.pretrain.corpusDirs) {
      throw new Error(
        "--pretrain-prose mixes prose into the synthetic corpus, which --pretrain-data replaces; give one",
      );
    }
    const n = num("pretrain-prose")!;
    if (!Number.isInteger(n) || n < 0 || n > PROSE_SOURCE.characters) {
      throw new Error(
        `--pretrain-prose must be an integer in 0–${PROSE_SOURCE.characters}, got ${n}`,
      );
    }
    spec.model.pretrain.proseCharacters = n;
  } else if (f["pretrain-data"] !== undefined) {
    spec.model.pretrain.proseCharacters = 0;
  }
  if (f["pretrain-exclude"] !== undefined) {
    if (!spec.model.pretrain.corpusDirs) {
      throw new Error("--pretrain-exclude applies to --pretrain-data; give both");
    }
    spec.model.pretrain.corpusExclude = parseTaskList(f["pretrain-exclude"] as string);
  }
  if (num("pretrain-max-per-task") !== undefined) {
    if (!spec.model.pretrain.corpusDirs) {
      throw new Error("--pretrain-max-per-task applies to --pretrain-data; give both");
    }
    spec.model.pretrain.corpusMaxPerTask = positiveInt(
      "pretrain-max-per-task",
      num("pretrain-max-per-task")!,
    );
  }
  if (num("max-length") !== undefined) {
    spec.train.maxLength = positiveInt("max-length", num("max-length")!, { max: 65_536 });
  }
  if (num("max-prompt-length") !== undefined) {
    spec.train.maxPromptLength = positiveInt("max-prompt-length", num("max-prompt-length")!, {
      max: 65_536,
    });
  }
  if (spec.train.maxPromptLength >= spec.train.maxLength + 1) {
    throw new Error(
      `--max-prompt-length ${spec.train.maxPromptLength} must not exceed --max-length ` +
        `${spec.train.maxLength}`,
    );
  }
  if (num("pretrain-seq-length") !== undefined) {
    spec.model.pretrain.seqLength = positiveInt(
      "pretrain-seq-length",
      num("pretrain-seq-length")!,
      {
        max: 65_536,
      },
    );
  }
  if (num("pretrain-steps") !== undefined) {
    spec.model.pretrain.steps = positiveInt("pretrain-steps", num("pretrain-steps")!, {
      max: 1_000_000,
    });
  }
  if (num("pretrain-lr") !== undefined) {
    spec.model.pretrain.lr = numberInRange("pretrain-lr", num("pretrain-lr")!, {
      above: 0,
      max: 1,
    });
  }
  if (num("pretrain-warmup") !== undefined) {
    const w = num("pretrain-warmup")!;
    if (!Number.isInteger(w) || w < 0 || w > 1_000_000) {
      throw new Error(`--pretrain-warmup must be an integer in 0–10⁶, got ${w}`);
    }
    spec.model.pretrain.warmupSteps = w;
  }
}

/** `--max-new-tokens` above this is refused; generation also stops at the model's context. */
export const MAX_NEW_TOKENS = 4096;

async function prepareLm(
  spec: TraceSpec,
  context: { progress: Progress; orders: StreamOrder[] },
): Promise<PreparedTrack<LmTask[]>> {
  const { progress } = context;
  const orders = context.orders as (string | null)[];
  const taskLists = new Map<StreamOrder, LmTask[]>();
  for (const order of orders.slice(1)) {
    const list = [...TASK_ORDERS[order as TaskOrderName]];
    const loaded = (await loadTasks(spec, progress, list)).tasks;
    taskLists.set(
      order,
      loaded.map((t) => ({ name: t.name, train: t.train, test: t.test, metric: t.metric })),
    );
  }
  const firstList = orders[0] !== null && spec.orderList
    ? [...TASK_ORDERS[orders[0] as TaskOrderName]]
    : spec.data.tasks;
  const { tasks: taskData, description } = await loadTasks(spec, progress, firstList);
  const tasks: LmTask[] = taskData.map((t) => ({
    name: t.name,
    train: t.train,
    test: t.test,
    metric: t.metric,
  }));
  taskLists.set(orders[0], tasks);
  for (const [order, list] of taskLists) {
    // A task without test examples would score 0/0; one without training examples would be
    // "learnt" without a step. Both are refused before any work starts.
    for (const t of list) {
      for (const split of ["train", "test"] as const) {
        if (t[split].length === 0) {
          throw new Error(
            `task ${t.name}${order === null ? "" : ` (order ${order})`} has no ${split} ` +
              `examples (${
                spec.data.dirs
                  ? `${t.name}/${split}.json under ${spec.data.dirs.join(" or ")}`
                  : "synthetic data"
              }): every task needs at least one; not run`,
          );
        }
      }
    }
    if (list.length !== tasks.length) {
      throw new Error(
        `--orders: order ${order} has ${list.length} tasks but ${orders[0]} has ${tasks.length}; ` +
          "a run's orders must have the same number of tasks (run the others separately)",
      );
    }
  }
  // The model: a Hugging Face checkpoint (--model DIR) or the harness's pre-trained preset.
  let tokenizer: Tokenizer;
  let decoderConfig: DecoderConfig;
  let weights: TensorMap;
  let modelRecord: Record<string, unknown>;
  if (spec.model.dir) {
    const ckpt = await readHfDecoderCheckpoint(spec.model.dir, {
      lora: spec.model.lora,
      log: (l) => progress.log(l),
    });
    tokenizer = ckpt.tokenizer;
    decoderConfig = ckpt.config;
    weights = ckpt.weights;
    const memory =
      `${ckpt.memory.parameters} parameters, ${formatBytes(ckpt.memory.bytes)} as float32 ` +
      `(limit ${formatBytes(ckpt.memory.limit.bytes)}, ${ckpt.memory.limit.source})`;
    modelRecord = { checkpoint: ckpt.provenance, memory, notes: ckpt.notes };
    progress.log(`model: ${spec.model.dir} (${memory})`);
  } else {
    const preset = Object.hasOwn(LM_PRESETS, spec.model.preset)
      ? LM_PRESETS[spec.model.preset]
      : undefined;
    if (!preset) {
      throw new Error(
        `unknown decoder preset "${spec.model.preset}"; known: ${
          Object.keys(LM_PRESETS).join(", ")
        }`,
      );
    }
    if (spec.train.maxLength > preset.contextLength) {
      throw new Error(
        `--max-length ${spec.train.maxLength} exceeds the context of preset ${spec.model.preset} ` +
          `(${preset.contextLength} tokens)`,
      );
    }
    const corpus = await pretrainCorpus(spec, [...taskLists.values()]);
    progress.log(`pre-training corpus: ${corpus.record.description}`);
    const tok = await loadTokenizer(spec, corpus, progress);
    tokenizer = tok.tokenizer;
    if (preset.vocabSize < tokenizer.vocabSize) {
      throw new Error(
        `decoder preset ${spec.model.preset} has a vocabulary of ${preset.vocabSize}, ` +
          `but the tokenizer ${tokenizer.name} needs ${tokenizer.vocabSize}`,
      );
    }
    decoderConfig = { ...preset, lora: spec.model.lora };
    // The corpus options are covered by the corpus hash in the backbone's cache key.
    const {
      corpusLines: _lines,
      corpusDirs: _dirs,
      corpusMaxPerTask: _max,
      proseCharacters: _prose,
      ...pretrain
    } = spec.model.pretrain;
    const pre = await pretrainedDecoder(decoderConfig, {
      corpus: corpus.documents,
      tokenizer,
      pretrain,
      cacheDir: spec.output.cacheDir,
      progress,
    });
    weights = pre.weights;
    modelRecord = {
      tokenizerDetails: tok.record,
      pretrain: {
        ...spec.model.pretrain,
        corpus: corpus.record,
        cache: pre.path,
        cached: pre.cached,
        report: pre.report,
      },
    };
    progress.log(
      `model: ${spec.model.preset} pre-trained on ${corpus.record.kind} text ` +
        `(${pre.cached ? "cached" : "trained"}: ${pre.path}; held-out loss ${
          pre.report.heldOutLoss?.toFixed(3)
        })`,
    );
  }

  return {
    numTasks: tasks.length,
    describe: {
      scenario: "continual instruction tuning (task-agnostic at test time)",
      protocol:
        "tasks in order; loss on answer tokens + EOS (spec §9.3); after each task the single " +
        "adapter generates answers for the test split of every task seen so far, with no task id (except " +
        "dualprompt, which prepends the evaluated task's prompt, as the released code does); each task " +
        "is scored with its own metric (spec §9.5), 0–100",
      data: {
        description,
        numTasks: tasks.length,
        tasks: tasks.map((t) => t.name),
        metrics: tasks.map((t) => t.metric),
        sizes: tasks.map((t) => [t.train.length, t.test.length]),
        order: spec.data.order,
        orders: spec.orderList
          ? Object.fromEntries([...taskLists].map(([o, l]) => [String(o), l.map((t) => t.name)]))
          : null,
        notes: taskData.flatMap((t) => t.notes.map((n) => `${t.name}: ${n}`)),
      },
      model: {
        preset: spec.model.preset,
        decoder: decoderConfig,
        tokenizer: tokenizer.name,
        loraSites: `q and v projections of every layer (${
          2 * decoderConfig.layers
        } sites, layer order = tree depth order)`,
        ...modelRecord,
      },
      decoding: {
        strategy: spec.train.temperature > 0
          ? `sampling, temperature ${spec.train.temperature}`
          : "greedy",
        maxNewTokens: spec.train.maxNewTokens,
        maxPromptLength: spec.train.maxPromptLength,
        generationSeed: spec.train.temperature > 0 ? spec.seeds.method : null,
      },
    },
    train: spec.train,
    stream: (order) => Promise.resolve(taskLists.get(order)!),
    async runCell(cell) {
      const model = createDecoder(decoderConfig, { rng: cell.rngs.init, weights });
      model.setBaseTrainable(false);
      try {
        await trainLmIncremental(cell.stream, {
          model,
          method: cell.method,
          tokenizer,
          score,
          config: { ...spec.train, epochs: cell.epochs },
          rngs: {
            data: cell.rngs.data,
            method: cell.rngs.method,
            generation: new Rng(cell.seeds.method ^ 0x6e6),
          },
          recorder: cell.writer.lmRecorder(cell.key, { taskNames: cell.stream.map((t) => t.name) }),
          resume: cell.resume,
          progress: cell.progress,
          label: cell.label,
        });
      } finally {
        model.dispose();
      }
    },
  };
}

/** The language-model TRACE track (`deno task exp:trace`). */
export const LM_TRACK: ExperimentTrack<TraceSpec, LmTask[]> = {
  name: "lm",
  usage: "deno task exp:trace [flags]",
  flags: LM_FLAGS,
  applyFlags: applyLmFlags,
  parseOrder(token) {
    if (!(token in TASK_ORDERS)) {
      throw new Error(`--orders ${token}: known orders ${Object.keys(TASK_ORDERS).join(", ")}`);
    }
    return token;
  },
  setOrders(spec, orders, flags) {
    if (flags.order !== undefined || flags.tasks !== undefined) {
      throw new Error("--orders replaces --order / --tasks; give one");
    }
    const list = orders as string[];
    spec.orderList = list;
    spec.data.order = list[0];
    spec.data.tasks = [...TASK_ORDERS[list[0] as TaskOrderName]];
  },
  plannedTasks: (spec) => spec.data.dirs === null ? SYNTHETIC_TASKS.length : spec.data.tasks.length,
  defaultOrder: (spec) => spec.data.order,
  prepare: prepareLm,
};

/**
 * Run a TRACE experiment: {@link runExperiment} on {@link LM_TRACK}.
 *
 * @example
 * ```ts ignore
 * import { SPEC } from "../../experiments/trace.ts";
 * const { runDir } = await runTrace(SPEC);
 * ```
 */
export function runTrace(spec: TraceSpec): Promise<ExperimentResult> {
  return runExperiment(spec, LM_TRACK);
}
