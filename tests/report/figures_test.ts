/**
 * The visual check of a run's figures (issue 16): a fixture run of 8 methods (variants of one
 * family among them) and 2 seeds is reported, every figure rendered, and the properties a reader
 * needs are asserted from the specs and the rendered views: every method a distinct colour +
 * shape + dash, the same method the same look in two runs, facets in at most 5 columns, SVG
 * width at most 1,800 px, non-negative quantities on axes that start at 0, intervals where there
 * are seeds.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import * as vega from "vega";
import * as vl from "vega-lite";
import type { TopLevelSpec } from "vega-lite";
import { methodStyles } from "../../lib/report/method_style.ts";
import { writeRunReport } from "../../lib/report/run_report.ts";
import { tableToCsv } from "../../lib/report/tables.ts";

/** Widest figure a reader should need to scroll for, in CSS pixels. */
const MAX_WIDTH = 1800;

const METHODS = [
  { label: "seqlora", name: "seqlora" },
  { label: "hide-lora", name: "hide-lora" },
  { label: "hide-lora-reduced-epochs", name: "hide-lora" },
  { label: "hide-treelora", name: "hide-treelora" },
  { label: "hide-treelora-reduced-epochs", name: "hide-treelora" },
  { label: "treelora", name: "treelora" },
  { label: "treelora-paper", name: "treelora" },
  { label: "gem", name: "gem" },
];

async function fixtureRun(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const T = 3;
  const matrix = [];
  const timings = [];
  const components = [];
  const losses = [];
  const curve = [];
  for (const [mi, m] of METHODS.entries()) {
    for (const seed of [0, 1]) {
      for (let i = 1; i <= T; i++) {
        for (let j = 1; j <= i; j++) {
          const acc = 90 - 10 * (i - j) * (1 + mi / 8) + seed;
          matrix.push({
            method: m.label,
            seed,
            trained_through: i,
            task: j,
            acc_cil: acc,
            acc_til: acc,
          });
        }
        const train = 10 + mi + seed;
        timings.push({
          method: m.label,
          seed,
          task: i,
          train_seconds: train,
          eval_seconds: 1,
          train_images: 1000,
          images_per_second: 1000 / train,
        });
        for (const component of ["forward_backward", "data", "method"]) {
          components.push({ method: m.label, seed, task: i, component, seconds: train / 3 });
        }
        for (let step = 1; step <= 4; step++) {
          losses.push({
            method: m.label,
            seed,
            task: i,
            epoch: 1,
            step,
            term: "task",
            value: 2 / step,
          });
          losses.push({
            method: m.label,
            seed,
            task: i,
            epoch: 1,
            step,
            term: "total",
            value: 2 / step,
          });
          if (m.name.includes("treelora")) {
            losses.push({
              method: m.label,
              seed,
              task: i,
              epoch: 1,
              step,
              term: "regularizer",
              value: 40,
            });
          }
          curve.push({
            method: m.label,
            seed,
            task: i,
            step,
            samples_seen: 32 * step,
            accuracy: 20 * step,
            images: 100,
          });
        }
      }
    }
  }
  const config = {
    experiment: "fixture",
    scenario: "class-incremental",
    protocol: "fixture",
    data: { numTasks: T, source: "synthetic" },
    backbone: {},
    methods: METHODS.map((m) => ({ ...m, epochs: 1, options: {} })),
    train: { curveEvery: 1, curveImages: 100 },
  };
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  await Deno.writeTextFile(join(dir, "matrix.csv"), tableToCsv(matrix));
  await Deno.writeTextFile(join(dir, "timings.csv"), tableToCsv(timings));
  await Deno.writeTextFile(join(dir, "components.csv"), tableToCsv(components));
  await Deno.writeTextFile(join(dir, "losses.csv"), tableToCsv(losses));
  await Deno.writeTextFile(join(dir, "learning_curve.csv"), tableToCsv(curve));
}

/** Compile and run a spec headless; returns the view (caller finalizes). */
async function view(spec: TopLevelSpec): Promise<vega.View> {
  const v = new vega.View(vega.parse(vl.compile(structuredClone(spec)).spec), { renderer: "none" });
  await v.runAsync();
  return v;
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** Every `{field: "method", scale: {domain, range}}` encoding of a channel, anywhere in the spec. */
function methodScales(spec: Json, channel: string): { domain: string[]; range: unknown[] }[] {
  const out: { domain: string[]; range: unknown[] }[] = [];
  const walk = (node: Json) => {
    if (node === null || typeof node !== "object") return;
    const enc = node.encoding?.[channel];
    if (enc?.field === "method" && enc.scale?.domain) out.push(enc.scale);
    for (const v of Object.values(node)) walk(v);
  };
  walk(spec);
  return out;
}

Deno.test("figures: distinct looks per method, ≤ 5 facet columns, ≤ 1,800 px wide, axes from 0, bands for seeds", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "fixture");
    await fixtureRun(dir);
    await writeRunReport(dir, { png: false });
    const names = [...Deno.readDirSync(join(dir, "plots"))]
      .map((e) => e.name)
      .filter((n) => n.endsWith(".vl.json"))
      .map((n) => n.slice(0, -".vl.json".length))
      .sort();
    for (
      const want of [
        "accuracy_curve",
        "accuracy_vs_throughput",
        "training_time",
        "learning_curve",
        "loss_terms",
      ]
    ) {
      assert(names.includes(want), `no ${want} figure`);
    }
    for (const name of names) {
      const spec: Json = JSON.parse(await Deno.readTextFile(join(dir, "plots", `${name}.vl.json`)));
      // Facets wrap at 5 columns at most.
      if (spec.facet) {
        assert(
          spec.columns !== undefined && spec.columns <= 5,
          `${name}: facet columns ${spec.columns}`,
        );
      }
      const svg = await Deno.readTextFile(join(dir, "plots", `${name}.svg`));
      const width = Number(/<svg[^>]* width="([\d.]+)"/.exec(svg)?.[1]);
      assert(width > 0 && width <= MAX_WIDTH, `${name}: ${width} px wide`);
      // Where methods are drawn, every method has its own colour + shape + dash combination.
      for (const colors of methodScales(spec, "color")) {
        const shapes = methodScales(spec, "shape")[0];
        const dashes = methodScales(spec, "strokeDash")[0];
        const looks = colors.domain.map((m, i) =>
          JSON.stringify([
            colors.range[i],
            shapes ? shapes.range[shapes.domain.indexOf(m)] : null,
            dashes ? dashes.range[dashes.domain.indexOf(m)] : null,
          ])
        );
        assertEquals(new Set(looks).size, looks.length, `${name}: two methods look alike`);
      }
    }
    // The throughput axis cannot go below 0; seeds give error bars and bands.
    const thr: Json = JSON.parse(
      await Deno.readTextFile(join(dir, "plots", "accuracy_vs_throughput.vl.json")),
    );
    const v = await view(thr);
    try {
      assert(v.scale("x").domain()[0] >= 0, `x domain ${v.scale("x").domain()}`);
    } finally {
      v.finalize();
    }
    assert(
      thr.data.values.some((r: Json) => r.accHigh > r.accLow),
      "no accuracy error bars with 2 seeds",
    );
    const curve: Json = JSON.parse(
      await Deno.readTextFile(join(dir, "plots", "accuracy_curve.vl.json")),
    );
    assert(curve.layer.some((l: Json) => l.mark.type === "area"), "no ±std band with 2 seeds");
    // Loss panels: independent x and y, symlog y (a term near 0 beside one near 40).
    const loss: Json = JSON.parse(
      await Deno.readTextFile(join(dir, "plots", "loss_terms.vl.json")),
    );
    assertEquals(loss.resolve.scale, { x: "independent", y: "independent" });
    assertEquals(loss.spec.encoding.y.scale.type, "symlog");
    // REPORT.md opens on the figures, before the table.
    const md = await Deno.readTextFile(join(dir, "REPORT.md"));
    assert(
      md.indexOf("plots/accuracy_curve.svg") < md.indexOf("| method |"),
      "REPORT.md does not open on its figures",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("method styles: a family shares a colour, variants differ in dash and shape, and a label looks the same in every run", () => {
  const a = methodStyles(METHODS);
  const i = (l: string) => a.domain.indexOf(l);
  assertEquals(a.colors[i("hide-treelora")], a.colors[i("hide-treelora-reduced-epochs")]);
  assert(a.shapes[i("hide-treelora")] !== a.shapes[i("hide-treelora-reduced-epochs")]);
  assert(a.colors[i("hide-lora")] !== a.colors[i("hide-treelora")]);
  // Another run with a different order and fewer methods: the same looks for the same labels.
  const b = methodStyles([METHODS[4], METHODS[0], METHODS[3]]);
  for (const label of ["hide-treelora-reduced-epochs", "seqlora", "hide-treelora"]) {
    const j = b.domain.indexOf(label);
    assertEquals([b.colors[j], b.shapes[j], b.dashes[j]], [
      a.colors[i(label)],
      a.shapes[i(label)],
      a.dashes[i(label)],
    ]);
  }
  // More than 6 methods: GEM (not highlighted) is muted (paler); TreeLoRA is not.
  assert(a.colors[i("gem")] !== "#e377c2");
  assertEquals(a.colors[i("hide-treelora")], "#d62728");
});
