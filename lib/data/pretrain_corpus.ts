/**
 * The real-text corpus a decoder is pre-trained on, and the check that it
 * shares no example with the task stream it will be used with.
 *
 * `readPretrainCorpus` reads the `train.json` of every task folder under the
 * given TRACE-format roots except the stream's tasks (with the O-LoRA copy in
 * `../shared/data/olora` and a stream of dbpedia, amazon, yahoo and agnews,
 * that is the training texts of the other 11 tasks: Yelp and IMDB reviews,
 * GLUE/SuperGLUE sentences, questions and passages). A document is
 * `prompt + answer`, the same string the trainer tokenises for an example.
 *
 * `corpusOverlap` is the contamination check. Texts are compared after
 * normalisation (Unicode NFKC, lower case, every run of white space one
 * space, trimmed); a stream example (train or test, of every task of every
 * order) overlaps when its normalised prompt, or prompt + answer, equals the
 * normalised prompt or document of a corpus example. The rule catches copies
 * and re-wrapped copies of an example; it does not look for paraphrases or
 * shared passages inside different examples.
 *
 * @module
 */

import { join } from "@std/path";
import { parseTraceSplit, type TraceExample } from "./trace.ts";

/** A pre-training corpus read from task folders, with where it came from. */
export interface PretrainCorpus {
  /** One document per training example: `prompt + answer`. */
  documents: string[];
  /** The examples the documents were made of (for {@link corpusOverlap}). */
  examples: TraceExample[];
  /** Task folders read, in order, with the root each came from and its number of documents. */
  tasks: { name: string; dir: string; documents: number }[];
  /** Task folders left out because they are in the stream. */
  excluded: string[];
  /** Total characters over the documents. */
  characters: number;
}

/** Options of {@link readPretrainCorpus}. */
export interface ReadPretrainCorpusOptions {
  /** Task names of the stream (every order): their folders are never read. */
  exclude: readonly string[];
  /** Keep the first N training records of each task (default all). */
  maxPerTask?: number;
}

async function taskFolders(root: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(root)) if (e.isDirectory) names.push(e.name);
  } catch (err) {
    throw new Error(
      `pre-training corpus: cannot list ${root}: ${(err as Error).message}; ` +
        "expected a folder of TRACE-format task folders (<Task>/train.json)",
      { cause: err },
    );
  }
  return names.sort();
}

/**
 * Read the training texts of every task folder under `roots` that is not in
 * `options.exclude` (first root wins for a name present in several). Folders
 * without a `train.json` are skipped; a malformed one is an error naming the
 * file.
 *
 * @example
 * ```ts ignore
 * import { readPretrainCorpus } from "./pretrain_corpus.ts";
 * const corpus = await readPretrainCorpus(["../shared/data/olora"], {
 *   exclude: ["dbpedia", "amazon", "yahoo", "agnews"],
 * });
 * console.log(corpus.tasks.length, corpus.documents.length); // 11 5150
 * ```
 */
export async function readPretrainCorpus(
  roots: readonly string[],
  options: ReadPretrainCorpusOptions,
): Promise<PretrainCorpus> {
  if (roots.length === 0) throw new RangeError("readPretrainCorpus: no folder given");
  const max = options.maxPerTask;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    throw new RangeError(`readPretrainCorpus: maxPerTask must be an integer >= 1, got ${max}`);
  }
  const exclude = new Set(options.exclude);
  const seen = new Set<string>();
  const out: PretrainCorpus = {
    documents: [],
    examples: [],
    tasks: [],
    excluded: [],
    characters: 0,
  };
  for (const root of roots) {
    for (const name of await taskFolders(root)) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (exclude.has(name)) {
        out.excluded.push(name);
        continue;
      }
      const path = join(root, name, "train.json");
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        throw new Error(`pre-training corpus: cannot read ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      const examples = parseTraceSplit(text, path).slice(0, max);
      for (const ex of examples) {
        const doc = ex.prompt + ex.answer;
        out.documents.push(doc);
        out.examples.push(ex);
        out.characters += doc.length;
      }
      out.tasks.push({ name, dir: root, documents: examples.length });
    }
  }
  if (out.documents.length === 0) {
    throw new Error(
      `pre-training corpus: no training texts under ${roots.join(", ")} outside the stream ` +
        `(${[...exclude].join(", ")}); expected other task folders with a train.json`,
    );
  }
  return out;
}

/**
 * The normalised form texts are compared in: NFKC, lower case, runs of white
 * space as one space, trimmed.
 *
 * @example
 * ```ts
 * import { normalizeForOverlap } from "./pretrain_corpus.ts";
 * normalizeForOverlap("  Hello\n\tWORLD "); // "hello world"
 * ```
 */
export function normalizeForOverlap(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

/** One stream example that the corpus contains. */
export interface OverlapHit {
  /** Stream task. */
  task: string;
  /** Split of the stream example. */
  split: "train" | "test";
  /** Index of the example in that split. */
  index: number;
}

/** What {@link corpusOverlap} found. */
export interface CorpusOverlap {
  /** Stream examples compared. */
  checked: number;
  /** Those the corpus contains (empty = disjoint). */
  overlaps: OverlapHit[];
  /** The rule, in words (for config.json). */
  rule: string;
}

/** The rule {@link corpusOverlap} applies, as recorded in config.json. */
export const OVERLAP_RULE = "a stream example (train or test) overlaps when its prompt, or " +
  "prompt + answer, equals a corpus example's prompt or document after NFKC, lower-casing and " +
  "white-space collapsing";

/**
 * Which stream examples the corpus contains, by the rule of this module.
 * `corpus` is either examples (prompt and document are both compared) or
 * plain documents.
 *
 * @example
 * ```ts
 * import { corpusOverlap } from "./pretrain_corpus.ts";
 * const hit = corpusOverlap(["The cat sat.  yes"], [
 *   { name: "t", train: [{ prompt: "the cat  sat.", answer: " Yes" }], test: [] },
 * ]);
 * hit.overlaps; // [{ task: "t", split: "train", index: 0 }]
 * ```
 */
export function corpusOverlap(
  corpus: readonly (string | TraceExample)[],
  stream: readonly {
    name: string;
    train: readonly TraceExample[];
    test: readonly TraceExample[];
  }[],
): CorpusOverlap {
  const keys = new Set<string>();
  for (const c of corpus) {
    if (typeof c === "string") keys.add(normalizeForOverlap(c));
    else {
      keys.add(normalizeForOverlap(c.prompt));
      keys.add(normalizeForOverlap(c.prompt + c.answer));
    }
  }
  const overlaps: OverlapHit[] = [];
  let checked = 0;
  for (const task of stream) {
    for (const split of ["train", "test"] as const) {
      task[split].forEach((ex, index) => {
        checked++;
        if (
          keys.has(normalizeForOverlap(ex.prompt)) ||
          keys.has(normalizeForOverlap(ex.prompt + ex.answer))
        ) overlaps.push({ task: task.name, split, index });
      });
    }
  }
  return { checked, overlaps, rule: OVERLAP_RULE };
}
