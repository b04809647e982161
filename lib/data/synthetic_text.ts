/**
 * A deterministic, tiny stand-in for TRACE: eight synthetic instruction tasks
 * in TRACE's `{prompt, answer}` format, one per TRACE task and scored by the
 * same rule, small enough for a byte-level LM trained from scratch on a CPU.
 *
 * | task              | mirrors     | metric            | what it asks                                  |
 * |-------------------|-------------|-------------------|-----------------------------------------------|
 * | `syn-C-STANCE`    | C-STANCE    | `accuracy`        | stance toward an object, A/B/C (from the verb) |
 * | `syn-FOMC`        | FOMC        | `accuracy`        | dovish/hawkish/neutral policy sentence, A/B/C  |
 * | `syn-MeetingBank` | MeetingBank | `rouge_l`         | one-line summary of a vote                     |
 * | `syn-Py150`       | Py150       | `edit_similarity` | the next line of a code snippet (`<EOL>` style)|
 * | `syn-ScienceQA`   | ScienceQA   | `letter_accuracy` | category question, letter + one-line reason    |
 * | `syn-NumGLUE-cm`  | NumGLUE-cm  | `accuracy`        | counting with an unstated fact (spider: 8 legs)|
 * | `syn-NumGLUE-ds`  | NumGLUE-ds  | `accuracy`        | one-step addition/subtraction word problem     |
 * | `syn-20Minuten`   | 20Minuten   | `sari`            | German sentence with its adjuncts removed      |
 *
 * Every prompt starts with an instruction line like TRACE's (shortened; Py150
 * has none, as in the TRACE files) and ends like the TRACE prompts
 * ("Stance:", "Answer:", "Summary:", "Simplification:", an `<EOL>`). Prompts
 * are at most 120 bytes of UTF-8 and answers at most 40, so a small byte-level
 * model can learn each task in a few epochs. Within a task no prompt occurs
 * twice across train/eval/test.
 *
 * {@link writeSyntheticTrace} writes the TRACE layout, so runs read it back
 * with `readTraceTask` like the real data. {@link syntheticCorpus} makes
 * generic pre-training text (sentences, arithmetic facts, code lines, German)
 * that contains none of the task prompts.
 *
 * @module
 */

import { join } from "@std/path";
import { writeJsonAtomic } from "../io.ts";
import { Rng } from "../random.ts";
import type { TraceMetric } from "../metrics/trace_metrics.ts";
import { metricForTask, TASK_ORDERS, type TraceExample } from "./trace.ts";

/**
 * The synthetic task names, in TRACE order (`TASK_ORDERS.synthetic`).
 *
 * @example
 * ```ts
 * import { SYNTHETIC_TASKS } from "./synthetic_text.ts";
 * SYNTHETIC_TASKS[0]; // "syn-C-STANCE"
 * ```
 */
export const SYNTHETIC_TASKS: readonly string[] = TASK_ORDERS.synthetic;

/**
 * The instruction line that starts each synthetic task's prompts (empty for
 * `syn-Py150`, whose prompts start with `<s>` as in TRACE's Py150 files).
 *
 * @example
 * ```ts
 * import { SYNTHETIC_PREFIXES } from "./synthetic_text.ts";
 * SYNTHETIC_PREFIXES["syn-NumGLUE-ds"]; // "Solve the following math problem.\n"
 * ```
 */
export const SYNTHETIC_PREFIXES: Readonly<Record<string, string>> = Object.freeze({
  "syn-C-STANCE": "Stance toward the object? A.support B.oppose C.neutral\n",
  "syn-FOMC": "Policy stance? A. dovish, B. hawkish, C. neutral.\n",
  "syn-MeetingBank": "Write a summary of the meeting transcript.\n",
  "syn-Py150": "",
  "syn-ScienceQA": "Choose an answer and give your reasons.\n\n",
  "syn-NumGLUE-cm": "Solve the following math problem.\n",
  "syn-NumGLUE-ds": "Solve the following math problem.\n",
  "syn-20Minuten": "Simplify this paragraph in German.\n\n",
});

/** Options of {@link generateSyntheticTrace} and {@link writeSyntheticTrace}. */
export interface SyntheticTraceOptions {
  /** Generator seed (default 0). */
  seed?: number;
  /** Training examples per task (default 200). */
  train?: number;
  /** Validation examples per task (default 40). */
  eval?: number;
  /** Test examples per task (default 40). */
  test?: number;
  /** Subset of {@link SYNTHETIC_TASKS} to generate, in the given order (default all). */
  tasks?: readonly string[];
}

/** One generated task. */
export interface SyntheticTraceTask {
  /** Task name, e.g. `syn-FOMC`. */
  name: string;
  /** The TRACE task it mirrors, e.g. `FOMC`. */
  mirrors: string;
  /** Scoring rule (that of the mirrored task). */
  metric: TraceMetric;
  /** Training records. */
  train: TraceExample[];
  /** Validation records. */
  eval: TraceExample[];
  /** Test records. */
  test: TraceExample[];
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

type Maker = (rng: Rng) => TraceExample;

// ---------------------------------------------------------------------------
// The eight generators

const STANCE_SUBJECTS = [
  "We",
  "They",
  "Fans",
  "Critics",
  "Farmers",
  "Parents",
  "Doctors",
  "Voters",
  "Nurses",
  "Artists",
];
const STANCE_VERBS: readonly (readonly string[])[] = [
  ["support", "welcome", "praise", "back"], // A
  ["oppose", "reject", "criticize", "protest"], // B
  ["discussed", "mentioned", "noted", "asked about"], // C
];
const STANCE_OBJECTS = [
  "park",
  "tax",
  "tram",
  "fair",
  "dam",
  "ban",
  "mall",
  "zoo",
  "fund",
  "port",
  "road",
  "farm",
];
const LETTERS = ["A", "B", "C"];

const makeStance: Maker = (rng) => {
  const label = rng.int(3);
  const object = pick(rng, STANCE_OBJECTS);
  const text = `${pick(rng, STANCE_SUBJECTS)} ${pick(rng, STANCE_VERBS[label])} the ${object}.`;
  return {
    prompt: `${SYNTHETIC_PREFIXES["syn-C-STANCE"]}Text: ${text}\nObject: ${object}\nStance:`,
    answer: LETTERS[label],
  };
};

const FOMC_ACTORS = ["The Fed", "The board", "Officials", "The bank", "Members", "The panel"];
const FOMC_VERBS: readonly (readonly string[])[] = [
  ["will cut", "plan to lower", "may ease"], // A dovish
  ["will raise", "plan to hike", "may tighten"], // B hawkish
  ["will hold", "plan to keep", "may maintain"], // C neutral
];
const FOMC_TARGETS = ["rates", "the policy rate", "borrowing costs", "interest rates"];
const FOMC_TIMES = ["soon", "this year", "in March", "next month", "for now", "again"];

const makeFomc: Maker = (rng) => {
  const label = rng.int(3);
  const text =
    `${pick(rng, FOMC_ACTORS)} ${pick(rng, FOMC_VERBS[label])} ${pick(rng, FOMC_TARGETS)} ` +
    `${pick(rng, FOMC_TIMES)}.`;
  return {
    prompt: `${SYNTHETIC_PREFIXES["syn-FOMC"]}Text:\n${text}\nStance:`,
    answer: LETTERS[label],
  };
};

const MEETING_SPEAKERS = ["Clerk", "Chair", "Mayor", "Member"];
const MEETING_ACTIONS = ["fund", "repair", "close", "expand", "sell", "rename", "study", "rezone"];
const MEETING_ITEMS = [
  "bridge",
  "library",
  "pool",
  "depot",
  "park",
  "clinic",
  "market",
  "garage",
  "stadium",
  "plaza",
];

const makeMeeting: Maker = (rng) => {
  const action = pick(rng, MEETING_ACTIONS);
  const item = pick(rng, MEETING_ITEMS);
  const yes = rng.int(10);
  let no = rng.int(9);
  if (no >= yes) no++; // never a tie
  const transcript = `${
    pick(rng, MEETING_SPEAKERS)
  }: motion to ${action} the ${item}. Vote ${yes} to ${no}.`;
  return {
    prompt: `${SYNTHETIC_PREFIXES["syn-MeetingBank"]}Transcript:\n${transcript}\nSummary:`,
    // No final "." — with TRACE's ROUGE-L rule (a newline appended to the prediction) a
    // trailing "." would cap even a perfect prediction below 100 (see rougeLF).
    answer: `Motion to ${action} the ${item} ${yes > no ? "passed" : "failed"}`,
  };
};

const PY_CLASSES = ["Node", "Item", "User", "Job", "Task", "Cell", "Edge", "Page"];
const PY_NAMES = ["x", "y", "key", "val", "src", "dst", "size", "name", "data", "step"];
const PY_FUNCS = ["add", "scale", "merge", "clip", "mix", "join", "diff", "pick"];
const PY_OPS = ["+", "-", "*", "/", "%"];
const PY_LISTS = ["out", "xs", "items", "seen", "rows"];

/** Two different names from PY_NAMES. */
function twoNames(rng: Rng): [string, string] {
  const a = pick(rng, PY_NAMES);
  let b = pick(rng, PY_NAMES);
  while (b === a) b = pick(rng, PY_NAMES);
  return [a, b];
}

const makePy: Maker = (rng) => {
  const kind = rng.int(3);
  if (kind === 0) {
    const [a, b] = twoNames(rng);
    return {
      prompt:
        `<s> class ${pick(rng, PY_CLASSES)} : <EOL> def __init__ ( self , ${a} , ${b} ) : <EOL> ` +
        `self . ${a} = ${a} <EOL>`,
      answer: `self . ${b} = ${b}`,
    };
  }
  if (kind === 1) {
    const [a, b] = twoNames(rng);
    const c = pick(rng, ["res", "out", "tmp", "acc", "val2"]);
    return {
      prompt: `<s> def ${pick(rng, PY_FUNCS)} ( ${a} , ${b} ) : <EOL> ${c} = ${a} ${
        pick(rng, PY_OPS)
      } ${b} <EOL>`,
      answer: `return ${c}`,
    };
  }
  const list = pick(rng, PY_LISTS);
  const i = pick(rng, ["i", "j", "k", "n"]);
  const lit = rng.int(2) === 0 ? "<NUM_LIT>" : `<NUM_LIT:${2 + rng.int(9)}>`;
  return {
    prompt:
      `<s> ${list} = [ ] <EOL> for ${i} in range ( ${lit} ) : <EOL> ${list} . append ( ${i} ) <EOL>`,
    answer: `print ( ${list} , '<STR_LIT:done>' )`,
  };
};

/** Categories of the ScienceQA stand-in: the question phrase and [choice, reason] members. */
const SCIENCE_CATEGORIES: readonly {
  ask: string;
  members: readonly (readonly [string, string])[];
}[] = [
  {
    ask: "an animal",
    members: [
      ["cat", "Cats are animals."],
      ["owl", "Owls are animals."],
      ["frog", "Frogs are animals."],
      ["bee", "Bees are animals."],
      ["fox", "Foxes are animals."],
      ["whale", "Whales are animals."],
    ],
  },
  {
    ask: "a plant",
    members: [
      ["fern", "Ferns are plants."],
      ["oak", "Oaks are plants."],
      ["rose", "Roses are plants."],
      ["moss", "Moss is a plant."],
      ["pine", "Pines are plants."],
    ],
  },
  {
    ask: "a metal",
    members: [
      ["iron", "Iron is a metal."],
      ["gold", "Gold is a metal."],
      ["tin", "Tin is a metal."],
      ["copper", "Copper is a metal."],
      ["zinc", "Zinc is a metal."],
    ],
  },
  {
    ask: "a liquid",
    members: [
      ["milk", "Milk is a liquid."],
      ["water", "Water is a liquid."],
      ["juice", "Juice is a liquid."],
      ["oil", "Oil is a liquid."],
      ["tea", "Tea is a liquid."],
    ],
  },
];

const makeScience: Maker = (rng) => {
  const cat = rng.int(SCIENCE_CATEGORIES.length);
  const [right, reason] = pick(rng, SCIENCE_CATEGORIES[cat].members);
  const nChoices = 2 + rng.int(2);
  const pos = rng.int(nChoices);
  const choices: string[] = [];
  const used = new Set([right]);
  for (let k = 0; k < nChoices; k++) {
    if (k === pos) {
      choices.push(right);
      continue;
    }
    let other: string;
    do {
      let c = rng.int(SCIENCE_CATEGORIES.length - 1);
      if (c >= cat) c++;
      other = pick(rng, SCIENCE_CATEGORIES[c].members)[0];
    } while (used.has(other));
    used.add(other);
    choices.push(other);
  }
  const listed = choices.map((c, k) => `${LETTERS[k]}. ${c}`).join("\n");
  return {
    prompt:
      `${SYNTHETIC_PREFIXES["syn-ScienceQA"]}Question:\nWhich is ${
        SCIENCE_CATEGORIES[cat].ask
      }?\n\n` +
      `Choices:\n${listed}\n\nAnswer:`,
    answer: `${LETTERS[pos]}\n${reason}`,
  };
};

const NAMES = ["Ann", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jo"];
/** [plural thing, part, parts per thing] — the count is never stated in the prompt. */
const CM_FACTS: readonly (readonly [string, string, number])[] = [
  ["spiders", "legs", 8],
  ["ants", "legs", 6],
  ["cats", "legs", 4],
  ["birds", "legs", 2],
  ["horses", "legs", 4],
  ["bikes", "wheels", 2],
  ["cars", "wheels", 4],
  ["tricycles", "wheels", 3],
  ["triangles", "sides", 3],
  ["squares", "sides", 4],
  ["hexagons", "sides", 6],
  ["hands", "fingers", 5],
];

const makeNumCm: Maker = (rng) => {
  const [things, part, per] = pick(rng, CM_FACTS);
  const n = 1 + rng.int(9);
  return {
    prompt:
      `${SYNTHETIC_PREFIXES["syn-NumGLUE-cm"]}Question:\n${
        pick(rng, NAMES)
      } sees ${n} ${things}. ` +
      `How many ${part} are there?\nAnswer:`,
    answer: String(n * per),
  };
};

const DS_ITEMS = ["pens", "apples", "coins", "books", "cards", "eggs", "stamps", "shells"];

const makeNumDs: Maker = (rng) => {
  const name = pick(rng, NAMES);
  const item = pick(rng, DS_ITEMS);
  const a = 1 + rng.int(20);
  if (rng.int(2) === 0) {
    const b = 1 + rng.int(20);
    return {
      prompt:
        `${
          SYNTHETIC_PREFIXES["syn-NumGLUE-ds"]
        }Question:\n${name} had ${a} ${item} and got ${b} more. ` +
        `How many ${item} now?\nAnswer:`,
      answer: String(a + b),
    };
  }
  const b = rng.int(a + 1);
  return {
    prompt:
      `${
        SYNTHETIC_PREFIXES["syn-NumGLUE-ds"]
      }Question:\n${name} had ${a} ${item} and gave away ${b}. ` +
      `How many ${item} now?\nAnswer:`,
    answer: String(a - b),
  };
};

const DE_SUBJECTS = [
  "Der Hund",
  "Die Katze",
  "Der Bauer",
  "Die Lehrerin",
  "Das Kind",
  "Der Koch",
  "Die Ärztin",
  "Mein Onkel",
];
const DE_VERB_OBJECTS: readonly (readonly [string, string])[] = [
  ["liest", "ein Buch"],
  ["kauft", "Brot"],
  ["trinkt", "Tee"],
  ["sieht", "einen Film"],
  ["baut", "ein Haus"],
  ["malt", "ein Bild"],
  ["isst", "Käse"],
  ["hört", "Musik"],
  ["schreibt", "einen Brief"],
  ["fährt", "nach Zürich"],
];
const DE_TIMES = [
  "am Montag",
  "am Freitag",
  "am Sonntag",
  "im Sommer",
  "im Winter",
  "am Abend",
  "heute",
];
const DE_MANNERS = [
  "sehr gerne",
  "wie immer",
  "mit Freude",
  "ohne Pause",
  "langsam",
  "gern",
  "allein",
];

const makeMinuten: Maker = (rng) => {
  const subject = pick(rng, DE_SUBJECTS);
  const [verb, object] = pick(rng, DE_VERB_OBJECTS);
  const paragraph = `${subject} ${verb} ${pick(rng, DE_TIMES)} ${pick(rng, DE_MANNERS)} ${object}.`;
  return {
    prompt: `${SYNTHETIC_PREFIXES["syn-20Minuten"]}Paragraph:\n${paragraph}\n\nSimplification:`,
    answer: `${subject} ${verb} ${object}.`,
  };
};

const MAKERS: Readonly<Record<string, Maker>> = Object.freeze({
  "syn-C-STANCE": makeStance,
  "syn-FOMC": makeFomc,
  "syn-MeetingBank": makeMeeting,
  "syn-Py150": makePy,
  "syn-ScienceQA": makeScience,
  "syn-NumGLUE-cm": makeNumCm,
  "syn-NumGLUE-ds": makeNumDs,
  "syn-20Minuten": makeMinuten,
});

function checkCount(name: string, v: number | undefined, fallback: number): number {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`synthetic TRACE: ${name} must be an integer ≥ 0, got ${v}`);
  }
  return n;
}

/** A per-task stream, independent of which other tasks are generated. */
function taskRng(seed: number, task: string): Rng {
  let h = 0x811c9dc5;
  for (let k = 0; k < task.length; k++) h = Math.imul(h ^ task.charCodeAt(k), 0x01000193);
  return new Rng((seed ^ h) >>> 0);
}

/**
 * Generate the synthetic tasks (deterministic in `seed`; each task has its own
 * stream, so selecting a subset does not change a task's examples). Throws
 * when a task cannot produce the requested number of distinct prompts.
 *
 * @example
 * ```ts
 * import { generateSyntheticTrace } from "./synthetic_text.ts";
 * const [fomc] = generateSyntheticTrace({ seed: 1, train: 3, eval: 1, test: 1, tasks: ["syn-FOMC"] });
 * console.log(fomc.metric, fomc.train[0].prompt, fomc.train[0].answer);
 * ```
 */
export function generateSyntheticTrace(options: SyntheticTraceOptions = {}): SyntheticTraceTask[] {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) {
    throw new RangeError(`synthetic TRACE: seed must be an integer, got ${seed}`);
  }
  const nTrain = checkCount("train", options.train, 200);
  const nEval = checkCount("eval", options.eval, 40);
  const nTest = checkCount("test", options.test, 40);
  const tasks = options.tasks ?? SYNTHETIC_TASKS;
  return tasks.map((name) => {
    const make = MAKERS[name];
    if (make === undefined) {
      throw new RangeError(
        `unknown synthetic task ${JSON.stringify(name)}; expected one of ${
          SYNTHETIC_TASKS.join(", ")
        }`,
      );
    }
    const rng = taskRng(seed, name);
    const want = nTrain + nEval + nTest;
    const seen = new Set<string>();
    const examples: TraceExample[] = [];
    let misses = 0;
    while (examples.length < want) {
      const ex = make(rng);
      if (seen.has(ex.prompt)) {
        if (++misses > 50 * want + 1000) {
          throw new RangeError(
            `synthetic task ${name}: only ${examples.length} distinct prompts found, ${want} requested ` +
              `(train + eval + test); ask for fewer examples`,
          );
        }
        continue;
      }
      seen.add(ex.prompt);
      examples.push(ex);
    }
    return {
      name,
      mirrors: name.slice("syn-".length),
      metric: metricForTask(name),
      train: examples.slice(0, nTrain),
      eval: examples.slice(nTrain, nTrain + nEval),
      test: examples.slice(nTrain + nEval),
    };
  });
}

/** What {@link writeSyntheticTrace} wrote. */
export interface SyntheticTraceFiles {
  /** The data directory (pass it to `readTraceStream`). */
  dir: string;
  /** Task names written, in order. */
  tasks: string[];
  /** Path of the manifest (`synthetic_trace.json`: generator, seed and sizes). */
  manifest: string;
}

/**
 * Generate the synthetic tasks and write them in TRACE's layout,
 * `<dir>/<task>/{train,eval,test}.json`, plus a manifest
 * `<dir>/synthetic_trace.json` recording the options. Files are written
 * atomically.
 *
 * @example
 * ```ts ignore
 * import { writeSyntheticTrace } from "./synthetic_text.ts";
 * import { readTraceStream } from "./trace.ts";
 * const { dir, tasks } = await writeSyntheticTrace("/tmp/syn-trace", { seed: 0 });
 * const stream = await readTraceStream(dir, { tasks });
 * ```
 */
export async function writeSyntheticTrace(
  dir: string,
  options: SyntheticTraceOptions = {},
): Promise<SyntheticTraceFiles> {
  const tasks = generateSyntheticTrace(options);
  for (const t of tasks) {
    for (const split of ["train", "eval", "test"] as const) {
      await writeJsonAtomic(join(dir, t.name, `${split}.json`), t[split]);
    }
  }
  const manifest = join(dir, "synthetic_trace.json");
  await writeJsonAtomic(manifest, {
    generator: "treelora lib/data/synthetic_text.ts",
    version: 1,
    seed: options.seed ?? 0,
    sizes: { train: options.train ?? 200, eval: options.eval ?? 40, test: options.test ?? 40 },
    tasks: tasks.map((t) => ({ name: t.name, mirrors: t.mirrors, metric: t.metric })),
  });
  return { dir, tasks: tasks.map((t) => t.name), manifest };
}

// ---------------------------------------------------------------------------
// Pre-training corpus

const CORPUS_SUBJECTS = [
  "The cat",
  "A farmer",
  "My sister",
  "The old man",
  "Our team",
  "A small bird",
  "The teacher",
  "Her dog",
];
const CORPUS_VERBS = [
  "found",
  "painted",
  "carried",
  "watched",
  "cleaned",
  "opened",
  "sold",
  "lost",
];
const CORPUS_OBJECTS = [
  "a red box",
  "the window",
  "an old map",
  "the garden",
  "a letter",
  "the bread",
  "a new coat",
  "the boat",
];
const CORPUS_PLACES = [
  "near the river",
  "in the morning",
  "at the market",
  "after lunch",
  "on the hill",
  "before dinner",
];
const CORPUS_FACTS = [
  "A spider has eight legs.",
  "An ant has six legs.",
  "A cat has four legs.",
  "A bird has two legs.",
  "A bike has two wheels.",
  "A car has four wheels.",
  "A tricycle has three wheels.",
  "A triangle has three sides.",
  "A square has four sides.",
  "A hexagon has six sides.",
  "A hand has five fingers.",
  "Owls and foxes are animals.",
  "Ferns and oaks are plants.",
  "Iron and gold are metals.",
  "Milk and tea are liquids.",
  "Central banks raise rates to fight inflation.",
  "Lower rates make borrowing cheaper.",
];
const CORPUS_CODE = [
  (rng: Rng) =>
    `<s> ${pick(rng, PY_NAMES)} = ${pick(rng, PY_NAMES)} ${pick(rng, PY_OPS)} <NUM_LIT:${
      rng.int(10)
    }> <EOL>`,
  (rng: Rng) => `<s> if ${pick(rng, PY_NAMES)} > <NUM_LIT> : <EOL> return None <EOL>`,
  (rng: Rng) => `<s> import ${pick(rng, ["os", "re", "sys", "json", "math"])} <EOL>`,
  (rng: Rng) => `<s> def ${pick(rng, PY_FUNCS)} ( self ) : <EOL> pass <EOL>`,
  (rng: Rng) => `<s> print ( '<STR_LIT>' , ${pick(rng, PY_NAMES)} ) <EOL>`,
];
const CORPUS_GERMAN_SUBJECTS = [
  "Der Nachbar",
  "Die Schülerin",
  "Mein Bruder",
  "Die Oma",
  "Ein Vogel",
  "Der Lehrer",
];
const CORPUS_GERMAN_PREDICATES = [
  "spielt Fußball",
  "kocht Suppe",
  "singt ein Lied",
  "öffnet die Tür",
  "wartet auf den Bus",
  "putzt das Fenster",
  "schläft lange",
];
const CORPUS_GERMAN_TAILS = ["im Park", "zu Hause", "in der Stadt", "mit Freunden", "jeden Tag"];

/**
 * Generic pre-training lines, deterministic in `seed`: simple English
 * sentences, arithmetic facts ("7 plus 5 is 12."), general facts the tasks
 * presuppose ("A spider has eight legs."), code-like lines in Py150's token
 * style and short German sentences. No line contains a task prompt or an
 * instruction line of the synthetic tasks.
 *
 * @example
 * ```ts
 * import { syntheticCorpus } from "./synthetic_text.ts";
 * const lines = syntheticCorpus({ seed: 0, lines: 1000 });
 * console.log(lines.slice(0, 3));
 * ```
 */
export function syntheticCorpus(options: { seed: number; lines: number }): string[] {
  const { seed, lines } = options;
  if (!Number.isInteger(seed)) {
    throw new RangeError(`syntheticCorpus: seed must be an integer, got ${seed}`);
  }
  if (!Number.isInteger(lines) || lines < 0) {
    throw new RangeError(`syntheticCorpus: lines must be an integer ≥ 0, got ${lines}`);
  }
  const rng = new Rng((seed ^ 0xc0a9) >>> 0);
  const out: string[] = [];
  for (let k = 0; k < lines; k++) {
    const kind = rng.int(10);
    if (kind < 3) {
      out.push(
        `${pick(rng, CORPUS_SUBJECTS)} ${pick(rng, CORPUS_VERBS)} ${pick(rng, CORPUS_OBJECTS)} ` +
          `${pick(rng, CORPUS_PLACES)}.`,
      );
    } else if (kind < 5) {
      const a = rng.int(21);
      const b = rng.int(21);
      const op = rng.int(3);
      if (op === 0) out.push(`${a} plus ${b} is ${a + b}.`);
      else if (op === 1) {
        out.push(`${Math.max(a, b)} minus ${Math.min(a, b)} is ${Math.abs(a - b)}.`);
      } else out.push(`${a % 10} times ${b % 10} is ${(a % 10) * (b % 10)}.`);
    } else if (kind < 6) {
      out.push(pick(rng, CORPUS_FACTS));
    } else if (kind < 8) {
      out.push(pick(rng, CORPUS_CODE)(rng));
    } else {
      out.push(
        `${pick(rng, CORPUS_GERMAN_SUBJECTS)} ${pick(rng, CORPUS_GERMAN_PREDICATES)} ` +
          `${pick(rng, CORPUS_GERMAN_TAILS)}.`,
      );
    }
  }
  return out;
}
