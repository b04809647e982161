import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { join } from "@std/path";
import {
  generateSyntheticTrace,
  SYNTHETIC_PREFIXES,
  SYNTHETIC_TASKS,
  syntheticCorpus,
  writeSyntheticTrace,
} from "../../lib/data/synthetic_text.ts";
import { metricForTask, readTraceStream, TASK_ORDERS, TRACE_TASKS } from "../../lib/data/trace.ts";
import { scoreTask } from "../../lib/metrics/trace_metrics.ts";

const bytes = (s: string) => new TextEncoder().encode(s).length;

Deno.test("synthetic TRACE: eight tasks mirroring TRACE, default sizes 200/40/40", () => {
  const tasks = generateSyntheticTrace({ seed: 0 });
  assertEquals(SYNTHETIC_TASKS, TASK_ORDERS.synthetic);
  assertEquals(tasks.map((t) => t.name), [...SYNTHETIC_TASKS]);
  assertEquals(tasks.map((t) => t.mirrors), [...TRACE_TASKS]);
  for (const t of tasks) {
    assertEquals(t.metric, metricForTask(t.mirrors), t.name);
    assertEquals([t.train.length, t.eval.length, t.test.length], [200, 40, 40], t.name);
  }
});

Deno.test("synthetic TRACE: deterministic per seed; a task's examples do not depend on the selection", () => {
  const a = generateSyntheticTrace({ seed: 3, train: 20, eval: 5, test: 5 });
  const b = generateSyntheticTrace({ seed: 3, train: 20, eval: 5, test: 5 });
  assertEquals(a, b);
  const c = generateSyntheticTrace({ seed: 4, train: 20, eval: 5, test: 5 });
  for (let k = 0; k < a.length; k++) assertNotEquals(a[k].train, c[k].train, a[k].name);
  const only = generateSyntheticTrace({
    seed: 3,
    train: 20,
    eval: 5,
    test: 5,
    tasks: ["syn-Py150", "syn-FOMC"],
  });
  assertEquals(only[0], a.find((t) => t.name === "syn-Py150"));
  assertEquals(only[1], a.find((t) => t.name === "syn-FOMC"));
});

Deno.test("synthetic TRACE: short prompts/answers, TRACE-like prefixes and endings, no repeated prompt", () => {
  const endings: Record<string, string> = {
    "syn-C-STANCE": "\nStance:",
    "syn-FOMC": "\nStance:",
    "syn-MeetingBank": "\nSummary:",
    "syn-Py150": " <EOL>",
    "syn-ScienceQA": "\n\nAnswer:",
    "syn-NumGLUE-cm": "\nAnswer:",
    "syn-NumGLUE-ds": "\nAnswer:",
    "syn-20Minuten": "\n\nSimplification:",
  };
  for (const t of generateSyntheticTrace({ seed: 0 })) {
    const all = [...t.train, ...t.eval, ...t.test];
    assertEquals(new Set(all.map((e) => e.prompt)).size, all.length, `${t.name}: repeated prompt`);
    for (const e of all) {
      assert(bytes(e.prompt) <= 120, `${t.name}: prompt of ${bytes(e.prompt)} bytes: ${e.prompt}`);
      assert(
        bytes(e.answer) <= 40 && e.answer.length > 0,
        `${t.name}: answer ${JSON.stringify(e.answer)}`,
      );
      assert(e.prompt.startsWith(SYNTHETIC_PREFIXES[t.name]), `${t.name}: prefix`);
      assert(
        e.prompt.endsWith(endings[t.name]),
        `${t.name}: ending of ${JSON.stringify(e.prompt)}`,
      );
    }
    if (t.name === "syn-Py150") assert(t.train.every((e) => e.prompt.startsWith("<s> ")));
    else assert(SYNTHETIC_PREFIXES[t.name].endsWith("\n"), t.name);
  }
});

Deno.test("synthetic TRACE: answers follow the task rules", () => {
  const tasks = Object.fromEntries(generateSyntheticTrace({ seed: 1 }).map((t) => [t.name, t]));
  const all = (name: string) => [...tasks[name].train, ...tasks[name].eval, ...tasks[name].test];
  const stanceOf: Record<string, string> = {
    support: "A",
    welcome: "A",
    praise: "A",
    back: "A",
    oppose: "B",
    reject: "B",
    criticize: "B",
    protest: "B",
    discussed: "C",
    mentioned: "C",
    noted: "C",
    asked: "C",
  };
  for (const e of all("syn-C-STANCE")) {
    const m = /Text: \S+ (\S+) .*\nObject: (\S+)\n/.exec(e.prompt)!;
    assertEquals(e.answer, stanceOf[m[1]], e.prompt);
    assert(e.prompt.includes(`the ${m[2]}.`), e.prompt);
  }
  for (const e of all("syn-FOMC")) {
    const want = /cut|lower|ease/.test(e.prompt.split("Text:")[1])
      ? "A"
      : /raise|hike|tighten/.test(e.prompt)
      ? "B"
      : "C";
    assertEquals(e.answer, want, e.prompt);
  }
  for (const e of all("syn-MeetingBank")) {
    const m = /motion to (\w+) the (\w+)\. Vote (\d) to (\d)\./.exec(e.prompt)!;
    assertEquals(
      e.answer,
      `Motion to ${m[1]} the ${m[2]} ${Number(m[3]) > Number(m[4]) ? "passed" : "failed"}`,
    );
  }
  const perPart: Record<string, number> = {
    spiders: 8,
    ants: 6,
    cats: 4,
    birds: 2,
    horses: 4,
    bikes: 2,
    cars: 4,
    tricycles: 3,
    triangles: 3,
    squares: 4,
    hexagons: 6,
    hands: 5,
  };
  for (const e of all("syn-NumGLUE-cm")) {
    const m = /sees (\d) (\w+)\./.exec(e.prompt)!;
    assertEquals(e.answer, String(Number(m[1]) * perPart[m[2]]), e.prompt);
    assert(
      !/\b[2-8] (legs|wheels|sides|fingers)\b/.test(e.prompt),
      "the per-item count is never stated",
    );
  }
  for (const e of all("syn-NumGLUE-ds")) {
    const m = /had (\d+) \w+ and (got|gave away) (\d+)/.exec(e.prompt)!;
    const [a, b] = [Number(m[1]), Number(m[3])];
    assertEquals(e.answer, String(m[2] === "got" ? a + b : a - b), e.prompt);
  }
  for (const e of all("syn-ScienceQA")) {
    const letter = e.answer[0];
    const chosen = new RegExp(`\\n${letter}\\. (\\w+)\\n`).exec(e.prompt)![1];
    const reasonWord = e.answer.split("\n")[1].split(" ")[0].toLowerCase();
    assert(reasonWord.startsWith(chosen), `${chosen} vs ${e.answer}`);
  }
  for (const e of all("syn-20Minuten")) {
    const paragraph = e.prompt.split("Paragraph:\n")[1].split("\n\n")[0];
    const kept = e.answer.slice(0, -1).split(" ");
    const words = paragraph.slice(0, -1).split(" ");
    // The simplification keeps subject, verb and object in order and drops the rest.
    let k = 0;
    for (const w of words) if (w === kept[k]) k++;
    assertEquals(k, kept.length, `${paragraph} → ${e.answer}`);
    assert(kept.length < words.length);
  }
});

Deno.test("synthetic TRACE: gold answers score (near) 100 under the mirrored TRACE metric", () => {
  for (const t of generateSyntheticTrace({ seed: 2, train: 0, eval: 0, test: 30 })) {
    const score = scoreTask(
      t.metric,
      t.test.map((e) => ({ prediction: e.answer, reference: e.answer, source: e.prompt })),
    );
    assert(score > (t.metric === "sari" ? 90 : 99.99), `${t.name} (${t.metric}): ${score}`);
  }
});

Deno.test("writeSyntheticTrace: TRACE layout read back by readTraceStream", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-syn-" });
  try {
    const opts = { seed: 5, train: 12, eval: 4, test: 6 };
    const files = await writeSyntheticTrace(dir, opts);
    assertEquals(files.tasks, [...SYNTHETIC_TASKS]);
    const stream = await readTraceStream(files.dir, { tasks: files.tasks });
    const generated = generateSyntheticTrace(opts);
    assertEquals(stream.map((t) => [t.name, t.metric]), generated.map((t) => [t.name, t.metric]));
    for (let k = 0; k < stream.length; k++) {
      assertEquals(stream[k].train, generated[k].train);
      assertEquals(stream[k].eval, generated[k].eval);
      assertEquals(stream[k].test, generated[k].test);
    }
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "synthetic_trace.json")));
    assertEquals(manifest.seed, 5);
    assertEquals(manifest.sizes, { train: 12, eval: 4, test: 6 });
    assertEquals(manifest.tasks.length, 8);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("synthetic TRACE: bad options are rejected clearly", () => {
  assertThrows(
    () => generateSyntheticTrace({ tasks: ["syn-Lima"] }),
    RangeError,
    'unknown synthetic task "syn-Lima"',
  );
  assertThrows(
    () => generateSyntheticTrace({ train: -1 }),
    RangeError,
    "train must be an integer ≥ 0",
  );
  assertThrows(() => generateSyntheticTrace({ seed: 0.5 }), RangeError, "seed must be an integer");
  // syn-C-STANCE has 10 subjects × 12 verbs × 12 objects = 1440 distinct prompts.
  assertThrows(
    () => generateSyntheticTrace({ tasks: ["syn-C-STANCE"], train: 2000, eval: 0, test: 0 }),
    RangeError,
    "syn-C-STANCE: only 1440 distinct prompts found, 2000 requested",
  );
});

Deno.test("syntheticCorpus: deterministic, generic, disjoint from the task prompts", () => {
  const lines = syntheticCorpus({ seed: 0, lines: 2000 });
  assertEquals(lines.length, 2000);
  assertEquals(lines, syntheticCorpus({ seed: 0, lines: 2000 }));
  assertNotEquals(lines, syntheticCorpus({ seed: 1, lines: 2000 }));
  assertEquals(syntheticCorpus({ seed: 0, lines: 0 }), []);
  const tasks = generateSyntheticTrace({ seed: 0 });
  const prompts = new Set(
    tasks.flatMap((t) => [...t.train, ...t.eval, ...t.test].map((e) => e.prompt)),
  );
  const answers = new Set(
    tasks.flatMap((t) => [...t.train, ...t.eval, ...t.test].map((e) => e.answer)),
  );
  const markers = [
    ...Object.values(SYNTHETIC_PREFIXES).filter((p) => p !== "").map((p) => p.trim()),
    "Stance:",
    "Answer:",
    "Summary:",
    "Simplification:",
    "Question:",
    "Transcript:",
    "Paragraph:",
  ];
  for (const line of lines) {
    assert(!prompts.has(line), line);
    assert(!answers.has(line), line);
    for (const m of markers) {
      assert(!line.includes(m), `${JSON.stringify(line)} contains ${JSON.stringify(m)}`);
    }
    assert(bytes(line) <= 80 && line.length > 0, line);
  }
  // A mix of kinds: arithmetic, code-like and German lines all occur.
  assert(lines.some((l) => / plus \d+ is \d+\.$/.test(l)));
  assert(lines.some((l) => l.startsWith("<s> ")));
  assert(lines.some((l) => /[äöüß]/.test(l)));
  assertThrows(
    () => syntheticCorpus({ seed: 0, lines: -1 }),
    RangeError,
    "lines must be an integer",
  );
});
