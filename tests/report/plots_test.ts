import { assert, assertEquals } from "@std/assert";
import * as vl from "vega-lite";
import type { TopLevelSpec } from "vega-lite";
import {
  accuracyAfterEachTask,
  forgettingAfterEachTask,
  forgettingPerTask,
} from "../../lib/metrics/mod.ts";
import {
  accuracyCurveSpec,
  accuracyHeatmapSpec,
  accuracyVsThroughputSpec,
  forgettingCurveSpec,
  lossCurveSpec,
  renderSvg,
  trainingTimeSpec,
  VEGA_LITE_SCHEMA,
} from "../../lib/report/mod.ts";

const R_SEQ = [
  [95, NaN, NaN],
  [60, 93, NaN],
  [40, 55, 94],
];
const R_TREE = [
  [95, NaN, NaN],
  [80, 92, NaN],
  [72, 81, 90],
];

function curves() {
  const acc: { method: string; task: number; acc: number }[] = [];
  const forgetting: { method: string; task: number; forgetting: number }[] = [];
  for (const [method, R] of [["seqlora", R_SEQ], ["treelora", R_TREE]] as const) {
    accuracyAfterEachTask(R).forEach((a, t) => acc.push({ method, task: t + 1, acc: a }));
    forgettingAfterEachTask(R).forEach((f, t) =>
      forgetting.push({ method, task: t + 1, forgetting: f })
    );
  }
  return { acc, forgetting };
}

/** Compile with vega-lite, failing on any warning it logs. */
function compileStrict(spec: TopLevelSpec): void {
  const warnings: unknown[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args);
  try {
    const out = vl.compile(spec);
    assert(out.spec.marks !== undefined || out.spec.signals !== undefined);
  } finally {
    console.warn = original;
  }
  assertEquals(warnings, [], "vega-lite warnings");
}

function assertJsonClean(spec: TopLevelSpec): void {
  const s = spec as unknown as Record<string, unknown>;
  assertEquals(s.$schema, VEGA_LITE_SCHEMA);
  assert(typeof s.title === "string" && s.title.length > 0, "title");
  const data = s.data as { values: unknown[] };
  assert(Array.isArray(data.values) && data.values.length > 0, "inline data");
  const json = JSON.stringify(spec);
  assert(!json.includes("NaN") && !json.includes("null"), "no NaN rows in the data");
  assertEquals(JSON.parse(json), spec, "plain JSON");
}

async function check(spec: TopLevelSpec, expected: string[]): Promise<string> {
  assertJsonClean(spec);
  compileStrict(spec);
  const svg = await renderSvg(spec);
  assert(svg.startsWith("<svg"), "svg root");
  for (const text of expected) assert(svg.includes(text), `SVG lacks ${JSON.stringify(text)}`);
  return svg;
}

Deno.test("accuracyCurveSpec compiles and renders", async () => {
  const spec = accuracyCurveSpec(curves().acc);
  await check(spec, ["Average accuracy after each task", "seqlora", "treelora", "(%)"]);
});

Deno.test("forgettingCurveSpec drops NaN (task 1) and renders", async () => {
  const { forgetting } = curves();
  const spec = forgettingCurveSpec(forgetting);
  assertEquals((spec.data as { values: unknown[] }).values.length, 4);
  await check(spec, ["Average forgetting after each task", "treelora", "% points"]);
});

Deno.test("forgetting per task as curve rows renders with a custom title", async () => {
  const rows = forgettingPerTask(R_SEQ).map((f, j) => ({
    method: "seqlora",
    task: j + 1,
    forgetting: f,
  }));
  await check(forgettingCurveSpec(rows, { title: "Forgetting per task at the end" }), [
    "Forgetting per task at the end",
    "seqlora",
  ]);
});

Deno.test("trainingTimeSpec: one stacked bar per method by component", async () => {
  const rows = [];
  for (const method of ["seqlora", "treelora"]) {
    for (let task = 1; task <= 3; task++) {
      rows.push({ method, task, component: "forward_backward", seconds: 10 + task });
      rows.push({ method, task, component: "data", seconds: 1.5 });
      if (method === "treelora") rows.push({ method, task, component: "search", seconds: 0.7 });
    }
  }
  await check(trainingTimeSpec(rows), [
    "Training time per method by component",
    "seqlora",
    "treelora",
    "Training time, all tasks (s)",
    "search",
  ]);
});

Deno.test("accuracyHeatmapSpec: cells, labels, blank NaN cells", async () => {
  const spec = accuracyHeatmapSpec(R_TREE, { method: "treelora" });
  assertEquals((spec.data as { values: unknown[] }).values.length, 6);
  await check(spec, ["Accuracy matrix R (%): treelora", "81.0", "Trained through task i"]);
});

Deno.test("accuracyVsThroughputSpec: labelled points", async () => {
  const spec = accuracyVsThroughputSpec([
    { method: "seqlora", acc: 63, imagesPerSecond: 410 },
    { method: "treelora", acc: 81, imagesPerSecond: 380 },
    { method: "broken", acc: NaN, imagesPerSecond: 1 },
  ]);
  assertEquals((spec.data as { values: unknown[] }).values.length, 2);
  await check(spec, ["Accuracy vs training throughput", "treelora", "images/s"]);
});

Deno.test("lossCurveSpec: one panel per method, lines per term and task", async () => {
  const rows = [];
  let step = 0;
  for (let task = 1; task <= 2; task++) {
    for (let s = 0; s < 5; s++, step++) {
      for (const method of ["seqlora", "treelora"]) {
        rows.push({ method, task, step, term: "task", value: 2 / (s + 1) });
        if (method === "treelora") {
          rows.push({ method, task, step, term: "regularizer", value: 0.01 * s });
        }
      }
    }
  }
  await check(lossCurveSpec(rows), [
    "Loss terms during training",
    "regularizer",
    "treelora",
    "Step within the task",
  ]);
});
