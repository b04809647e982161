import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import {
  metricForTask,
  OLORA_TASKS,
  parseTaskList,
  parseTraceSplit,
  readTraceStream,
  readTraceTask,
  TASK_ORDERS,
  TRACE_TASKS,
} from "../../lib/data/trace.ts";

const REAL_TRACE = "/work/shared/data/trace";
const REAL_OLORA = "/work/shared/data/olora";
const haveRealData = await Deno.stat(REAL_TRACE).then(() => true, () => false);

function records(n: number, tag: string) {
  return Array.from(
    { length: n },
    (_, k) => ({ prompt: `${tag} prompt ${k}`, answer: `${tag}${k}` }),
  );
}

/** A data root with the given tasks; `splits` maps task → split → record count (absent = no file). */
async function makeRoot(
  splits: Record<string, Partial<Record<"train" | "eval" | "test", number>>>,
) {
  const dir = await Deno.makeTempDir({ prefix: "treelora-trace-" });
  for (const [task, counts] of Object.entries(splits)) {
    await Deno.mkdir(join(dir, task), { recursive: true });
    for (const [split, n] of Object.entries(counts)) {
      await Deno.writeTextFile(
        join(dir, task, `${split}.json`),
        JSON.stringify(records(n!, `${task}/${split}`)),
      );
    }
  }
  return dir;
}

// ---------------------------------------------------------------------------
// Parsing

Deno.test("parseTraceSplit: valid records; extra fields ignored; empty strings allowed", () => {
  const xs = parseTraceSplit(
    '[{"prompt": "Q1", "answer": "A"}, {"prompt": "", "answer": "", "id": 7}]',
    "t/train.json",
  );
  assertEquals(xs, [{ prompt: "Q1", answer: "A" }, { prompt: "", answer: "" }]);
  assertEquals(parseTraceSplit("[]", "t/train.json"), []);
});

Deno.test("parseTraceSplit: errors name the file, the record and what was expected", () => {
  const e1 = assertThrows(
    () => parseTraceSplit('[{"prompt": "x",', "d/FOMC/test.json"),
    SyntaxError,
  );
  assert(e1.message.startsWith("d/FOMC/test.json is not valid JSON: "), e1.message);
  assert(
    e1.message.length > "d/FOMC/test.json is not valid JSON: ".length,
    "parser message included",
  );
  assertThrows(
    () => parseTraceSplit('{"prompt": "x"}', "f.json"),
    TypeError,
    'f.json: expected a JSON array of {"prompt": string, "answer": string} records, got an object',
  );
  assertThrows(
    () => parseTraceSplit('[{"prompt": "x", "answer": "y"}, "oops"]', "f.json"),
    TypeError,
    'f.json: record 1 is a string ("oops"); expected an object with string fields "prompt" and "answer"',
  );
  assertThrows(() => parseTraceSplit("[null]", "f.json"), TypeError, "record 0 is null");
  assertThrows(() => parseTraceSplit("[[1]]", "f.json"), TypeError, "record 0 is an array");
  assertThrows(
    () => parseTraceSplit('[{"prompt": "x", "answer": "y"}, {"prompt": "z"}]', "f.json"),
    TypeError,
    'f.json: record 1 has no "answer" field',
  );
  assertThrows(
    () => parseTraceSplit('[{"answer": "y"}]', "f.json"),
    TypeError,
    'record 0 has no "prompt" field',
  );
  assertThrows(
    () => parseTraceSplit('[{"prompt": "x", "answer": 5}]', "f.json"),
    TypeError,
    'f.json: record 0, field "answer" is a number (5); expected a string',
  );
  assertThrows(
    () => parseTraceSplit('[{"prompt": null, "answer": "y"}]', "f.json"),
    TypeError,
    'record 0, field "prompt" is null; expected a string',
  );
});

// ---------------------------------------------------------------------------
// Reading

Deno.test("readTraceTask: reads the three splits, caps with max, reads only requested splits", async () => {
  const dir = await makeRoot({ FOMC: { train: 5, eval: 3, test: 4 } });
  try {
    const all = await readTraceTask(dir, "FOMC");
    assertEquals([all.name, all.metric, all.dir], ["FOMC", "accuracy", join(dir, "FOMC")]);
    assertEquals([all.train.length, all.eval.length, all.test.length], [5, 3, 4]);
    assertEquals(all.train[2], { prompt: "FOMC/train prompt 2", answer: "FOMC/train2" });
    assertEquals(all.notes, []);
    const some = await readTraceTask(dir, "FOMC", { splits: ["test"], max: { test: 2 } });
    assertEquals([some.train.length, some.eval.length, some.test.length], [0, 0, 2]);
    assertEquals(some.test.map((r) => r.answer), ["FOMC/test0", "FOMC/test1"]); // the first N, in file order
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTraceTask: a missing split names the file and suggests --tasks", async () => {
  const dir = await makeRoot({ MeetingBank: { eval: 2, test: 2 } });
  try {
    const path = join(dir, "MeetingBank", "train.json");
    const err = await assertRejects(() => readTraceTask(dir, "MeetingBank"), Error);
    assert(
      err.message.includes(`${path} does not exist (task MeetingBank, split train)`),
      err.message,
    );
    assert(err.message.includes("--tasks"), err.message);
    assert(err.message.includes(`missingTrain: "eval"`), err.message);
    // Stand-in: train on eval.json, recorded in notes.
    const t = await readTraceTask(dir, "MeetingBank", { missingTrain: "eval" });
    assertEquals(t.train, t.eval);
    assertEquals(t.notes.length, 1);
    assert(t.notes[0].includes("train split read from"), t.notes[0]);
    // Not requested: no error.
    assertEquals((await readTraceTask(dir, "MeetingBank", { splits: ["test"] })).test.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTraceTask: missing task directory, bad names, bad JSON, bad max", async () => {
  const dir = await makeRoot({ FOMC: { test: 1 }, "C-STANCE": { test: 1 } });
  try {
    await assertRejects(
      () => readTraceTask(dir, "Py150"),
      Error,
      `task directory ${
        join(dir, "Py150")
      } does not exist; tasks in ${dir}: C-STANCE, FOMC. Select tasks`,
    );
    await assertRejects(() => readTraceTask(dir, "../FOMC"), RangeError, "invalid task name");
    await assertRejects(() => readTraceTask(dir, "fomc"), RangeError, 'did you mean "FOMC"?');
    await Deno.writeTextFile(join(dir, "FOMC", "eval.json"), '[{"prompt": "p", "answer": 1}]');
    await assertRejects(
      () => readTraceTask(dir, "FOMC", { splits: ["eval"] }),
      TypeError,
      `${
        join(dir, "FOMC", "eval.json")
      }: record 0, field "answer" is a number (1); expected a string`,
    );
    await assertRejects(
      () => readTraceTask(dir, "FOMC", { splits: ["test"], max: { test: -1 } }),
      RangeError,
      "max.test must be a non-negative integer",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTraceStream: order kept, caps applied, several roots searched in order", async () => {
  const a = await makeRoot({
    FOMC: { train: 4, eval: 2, test: 3 },
    "C-STANCE": { train: 4, eval: 2, test: 3 },
  });
  const b = await makeRoot({
    yelp: { train: 6, eval: 2, test: 5 },
    FOMC: { train: 1, eval: 1, test: 1 },
  });
  try {
    const s = await readTraceStream([a, b], {
      tasks: ["yelp", "FOMC", "C-STANCE"],
      maxTrain: 3,
      maxTest: 2,
    });
    assertEquals(s.map((t) => t.name), ["yelp", "FOMC", "C-STANCE"]);
    assertEquals(s.map((t) => t.dir), [join(b, "yelp"), join(a, "FOMC"), join(a, "C-STANCE")]);
    assertEquals(s.map((t) => [t.train.length, t.eval.length, t.test.length]), [[3, 2, 2], [
      3,
      2,
      2,
    ], [3, 2, 2]]);
    assertEquals(s.map((t) => t.metric), ["accuracy", "accuracy", "accuracy"]);
    await assertRejects(
      () => readTraceStream([a, b], { tasks: ["Py150"] }),
      Error,
      `task Py150 was found in none of ${a}, ${b}`,
    );
    await assertRejects(
      () => readTraceStream(a, { tasks: ["FOMC", "FOMC"] }),
      RangeError,
      "appears twice",
    );
    await assertRejects(() => readTraceStream(a, { tasks: [] }), RangeError, "task list is empty");
    await assertRejects(
      () => readTraceStream(a, { tasks: ["Lima"] }),
      RangeError,
      "no TRACE metric",
    );
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Orders and metrics

Deno.test("TASK_ORDERS: exactly the orders of spec §8.2", () => {
  assertEquals(TASK_ORDERS.trace, [
    "C-STANCE",
    "FOMC",
    "MeetingBank",
    "Py150",
    "ScienceQA",
    "NumGLUE-cm",
    "NumGLUE-ds",
    "20Minuten",
  ]);
  assertEquals(TASK_ORDERS["olora-1"], ["dbpedia", "amazon", "yahoo", "agnews"]);
  assertEquals(TASK_ORDERS["olora-2"], ["dbpedia", "amazon", "agnews", "yahoo"]);
  assertEquals(TASK_ORDERS["olora-3"], ["yahoo", "amazon", "agnews", "dbpedia"]);
  assertEquals(
    TASK_ORDERS["olora-4"].join(" "),
    "MNLI CB WiC COPA QQP BoolQA RTE IMDB yelp amazon SST-2 dbpedia agnews MultiRC yahoo",
  );
  assertEquals(
    TASK_ORDERS["olora-5"].join(" "),
    "MultiRC BoolQA WiC MNLI CB COPA QQP RTE IMDB SST-2 dbpedia agnews yelp amazon yahoo",
  );
  assertEquals(
    TASK_ORDERS["olora-6"].join(" "),
    "yelp amazon MNLI CB COPA QQP RTE IMDB SST-2 dbpedia agnews yahoo MultiRC BoolQA WiC",
  );
  assertEquals(
    TASK_ORDERS["long-15"].join(" "),
    "C-STANCE FOMC MeetingBank Py150 ScienceQA NumGLUE-cm NumGLUE-ds 20Minuten dbpedia amazon yahoo " +
      "agnews yelp BoolQA QQP",
  );
  assertEquals(TASK_ORDERS["math-llm"], ["ScienceQA", "NumGLUE-cm", "NumGLUE-ds"]);
  assertEquals(TASK_ORDERS.synthetic, TRACE_TASKS.map((t) => `syn-${t}`));
  // Orders 4–6 are permutations of the 15 O-LoRA tasks.
  for (const k of ["olora-4", "olora-5", "olora-6"] as const) {
    assertEquals([...TASK_ORDERS[k]].sort(), [...OLORA_TASKS].sort());
  }
  assert(Object.isFrozen(TASK_ORDERS) && Object.isFrozen(TASK_ORDERS.trace));
});

Deno.test("metricForTask: spec §9.5 table", () => {
  const expected: Record<string, string> = {
    "C-STANCE": "accuracy",
    "FOMC": "accuracy",
    "MeetingBank": "rouge_l",
    "Py150": "edit_similarity",
    "ScienceQA": "letter_accuracy",
    "NumGLUE-cm": "accuracy",
    "NumGLUE-ds": "accuracy",
    "20Minuten": "sari",
  };
  for (const [task, metric] of Object.entries(expected)) {
    assertEquals(metricForTask(task), metric, task);
    assertEquals(metricForTask(`syn-${task}`), metric, `syn-${task}`);
  }
  for (const task of OLORA_TASKS) assertEquals(metricForTask(task), "accuracy", task);
  assertThrows(
    () => metricForTask("Lima"),
    RangeError,
    'no TRACE metric is defined for task "Lima"',
  );
  assertThrows(() => metricForTask("syn-Lima"), RangeError, "no TRACE metric");
  assertThrows(() => metricForTask("py150"), RangeError, 'did you mean "Py150"?');
});

Deno.test("parseTaskList: names and order names, comma-separated", () => {
  assertEquals(parseTaskList("trace"), [...TASK_ORDERS.trace]);
  assertEquals(parseTaskList(" C-STANCE , FOMC "), ["C-STANCE", "FOMC"]);
  assertEquals(parseTaskList("math-llm,yelp"), ["ScienceQA", "NumGLUE-cm", "NumGLUE-ds", "yelp"]);
  assertThrows(() => parseTaskList("trace,FOMC"), RangeError, '"FOMC" appears twice');
  assertThrows(() => parseTaskList(" , "), RangeError, "names no task");
});

// ---------------------------------------------------------------------------
// The shared copy of the real data

Deno.test({
  name: "real data: long-15 test splits read from the TRACE and O-LoRA copies",
  ignore: !haveRealData,
  async fn() {
    const s = await readTraceStream([REAL_TRACE, REAL_OLORA], {
      tasks: TASK_ORDERS["long-15"],
      splits: ["test"],
      maxTest: 100,
    });
    assertEquals(s.map((t) => t.name), [...TASK_ORDERS["long-15"]]);
    const sizes = Object.fromEntries(s.map((t) => [t.name, t.test.length]));
    assertEquals(sizes["NumGLUE-cm"], 81);
    assertEquals(sizes["C-STANCE"], 100);
    assertEquals(sizes["QQP"], 100);
    assert(
      s.find((t) => t.name === "FOMC")!.test[0].prompt.startsWith(
        "What is the monetary policy stance",
      ),
    );
    // MeetingBank has no train split in the shared copy.
    await assertRejects(
      () => readTraceTask(REAL_TRACE, "MeetingBank", { splits: ["train"] }),
      Error,
      "MeetingBank/train.json does not exist",
    );
  },
});
