/**
 * `results/index.html` (lib/report/html.ts), built by the report command from
 * two real tiny runs (Split CIFAR and TRACE, wasm backend) in a temp dir:
 *
 * 1. the page itself: one summary table and every figure per run, nothing
 *    fetched from elsewhere, ids unique after inlining, the facts present;
 * 2. the page in headless Chromium: every figure rendered (data marks with a
 *    non-empty box inside each inlined SVG) and every table cell equal to its
 *    run's summary.csv (read with `readCsvRows`, and as raw text).
 *
 * Step 2 drives `/usr/bin/chromium` with the npm package `playwright-core`.
 * Importing playwright-core reads `os.homedir()` and `os.release()`, which
 * need `--allow-sys`, and `deno task test` does not grant it; so the browser
 * runs in a child `deno run` of this same file (`import.meta.main`, where
 * `Deno.test` is a no-op) with `--allow-sys` and `--allow-run` for chromium
 * only, which prints what it saw as JSON. Step 2 is skipped, with a message
 * saying why, when `/usr/bin/chromium` is missing or playwright-core cannot be
 * imported (not in the import map, or the import fails).
 */
import { assert, assertEquals } from "@std/assert";
import { parse as parseCsv } from "@std/csv";
import { dirname, fromFileUrl, join, relative, SEPARATOR, toFileUrl } from "@std/path";

const CHROMIUM = "/usr/bin/chromium";
const PLAYWRIGHT = "playwright-core";
/** Flags the machine notes give for headless Debian chromium as root on a closed network. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const THIS_FILE = fromFileUrl(import.meta.url);
const PROJECT_CONFIG = join(dirname(THIS_FILE), "..", "..", "deno.json");

/** What the child saw on the page. */
interface PageFacts {
  figures: {
    run: string | null;
    plot: string | null;
    svgs: number;
    marks: number;
    visibleMarks: number;
    width: number;
    height: number;
  }[];
  tables: { run: string | null; header: string[]; rows: string[][] }[];
  ids: number;
  uniqueIds: number;
}

/** The child's report: the page facts, or why the browser could not be used. */
type ProbeResult =
  | { ok: true; facts: PageFacts; external: string[]; failed: string[]; errors: string[] }
  | { ok: false; importFailed: boolean; message: string };

// ---------------------------------------------------------------- the child

/** The part of playwright-core this file uses (the import is by a non-literal specifier). */
interface Playwright {
  chromium: {
    launch(options: { executablePath: string; args: string[] }): Promise<BrowserLike>;
  };
}
interface BrowserLike {
  newPage(): Promise<PageLike>;
  close(): Promise<void>;
}
interface PageLike {
  goto(url: string, options?: { waitUntil?: "load" }): Promise<unknown>;
  evaluate<T>(fn: () => T): Promise<T>;
  on(event: "request" | "requestfailed", cb: (r: { url(): string }) => void): void;
  on(event: "pageerror", cb: (e: Error) => void): void;
}

/** The DOM, as far as {@link collectPage} needs it (this file is type-checked without lib.dom). */
interface ElementLike {
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): ArrayLike<ElementLike>;
  getBoundingClientRect(): { width: number; height: number };
  textContent: string | null;
  id: string;
}

/** Runs in the page: figures with their SVG marks, tables with their cells, ids. */
function collectPage(): PageFacts {
  const doc = (globalThis as unknown as { document: ElementLike }).document;
  const all = (el: ElementLike, sel: string) => Array.from(el.querySelectorAll(sel));
  const markSelector = ["path", "rect", "line", "circle", "ellipse", "polygon", "text"]
    .map((t) => `.role-mark ${t}`).join(", ");
  const figures = all(doc, "figure[data-plot]").map((f) => {
    const svgs = all(f, "svg");
    const marks = all(f, markSelector);
    const visible = marks.filter((m) => {
      const r = m.getBoundingClientRect();
      return r.width > 0 || r.height > 0;
    });
    const box = svgs.length > 0 ? svgs[0].getBoundingClientRect() : { width: 0, height: 0 };
    return {
      run: f.getAttribute("data-run"),
      plot: f.getAttribute("data-plot"),
      svgs: svgs.length,
      marks: marks.length,
      visibleMarks: visible.length,
      width: box.width,
      height: box.height,
    };
  });
  const tables = all(doc, "table[data-run]").map((t) => ({
    run: t.getAttribute("data-run"),
    header: all(t, "thead th").map((c) => c.textContent ?? ""),
    rows: all(t, "tbody tr").map((r) => all(r, "td").map((c) => c.textContent ?? "")),
  }));
  const ids = all(doc, "[id]").map((e) => e.id);
  return { figures, tables, ids: ids.length, uniqueIds: new Set(ids).size };
}

/** Child: open `htmlPath` in headless Chromium (or only import playwright-core), print JSON. */
async function probe(htmlPath: string | null): Promise<ProbeResult> {
  let pw: Playwright;
  try {
    const specifier = PLAYWRIGHT; // not a literal: the suite must load without the package
    pw = await import(specifier);
  } catch (err) {
    return { ok: false, importFailed: true, message: (err as Error).message.split("\n")[0] };
  }
  if (htmlPath === null) {
    return { ok: true, facts: emptyFacts(), external: [], failed: [], errors: [] };
  }
  const browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const external: string[] = [];
    const failed: string[] = [];
    const errors: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith("file:")) external.push(r.url());
    });
    page.on("requestfailed", (r) => failed.push(r.url()));
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(toFileUrl(htmlPath).href, { waitUntil: "load" });
    const facts = await page.evaluate(collectPage);
    return { ok: true, facts, external, failed, errors };
  } finally {
    await browser.close();
  }
}

function emptyFacts(): PageFacts {
  return { figures: [], tables: [], ids: 0, uniqueIds: 0 };
}

if (import.meta.main) {
  const [mode, path] = Deno.args;
  const result = await probe(mode === "--page" ? path : null).catch((err): ProbeResult => ({
    ok: false,
    importFailed: false,
    message: (err as Error).stack ?? String(err),
  }));
  console.log(JSON.stringify(result));
}

/** Run this file as the child; `htmlPath` null only tries the import. */
async function runProbe(htmlPath: string | null): Promise<ProbeResult> {
  const args = [
    "run",
    "--quiet",
    `--config=${PROJECT_CONFIG}`,
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys",
    `--allow-run=${CHROMIUM}`,
    THIS_FILE,
    ...(htmlPath === null ? ["--import"] : ["--page", htmlPath]),
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stdin: "null" }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const last = stdout.split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last) as ProbeResult;
  } catch {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    return {
      ok: false,
      importFailed: htmlPath === null,
      message: `child exited ${out.code}: ${stderr.split("\n").slice(0, 3).join(" ") || stdout}`,
    };
  }
}

/** Why the browser step cannot run here, or null when it can. */
async function browserSkipReason(): Promise<string | null> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    return `${CHROMIUM} is missing (Debian: apt-get install -y chromium)`;
  }
  try {
    import.meta.resolve(PLAYWRIGHT);
  } catch {
    return `${PLAYWRIGHT} is not in the import map of deno.json`;
  }
  const r = await runProbe(null);
  return r.ok ? null : `import of ${PLAYWRIGHT} failed: ${r.message}`;
}

// ---------------------------------------------------------------- the tests

const SKIP = import.meta.main ? null : await browserSkipReason();
if (SKIP !== null) console.warn(`html_report_test: the headless Chromium step is skipped: ${SKIP}`);

/** Two real tiny runs under `<root>/results`, reported by the report command. */
async function buildResults(root: string): Promise<string> {
  const { SPEC: CIFAR_SPEC } = await import("../../experiments/split_cifar.ts");
  const { SPEC: TRACE_SPEC } = await import("../../experiments/trace.ts");
  const { runSplitCifar } = await import("../../lib/tracks/vit_class_incremental.ts");
  const { LM_TRACK, runTrace } = await import("../../lib/tracks/lm_trace.ts");
  const { applyFlags, experimentFlags } = await import("../../lib/run/cli.ts");
  const { parseFlags } = await import("../../lib/flags.ts");
  const { runReportCli } = await import("../../lib/report/report_cli.ts");
  const results = join(root, "results");
  const cache = join(root, "cache");

  const cifar = structuredClone(CIFAR_SPEC);
  cifar.data.synthetic = { seed: 3, trainPerClass: 4, testPerClass: 2 };
  cifar.data.numTasks = 2;
  cifar.backbone.preset = "micro";
  cifar.backbone.lora = { rank: 2, alpha: 4, dropout: 0.1 };
  cifar.backbone.pretrain = {
    seed: 1,
    trainPerClass: 2,
    testPerClass: 1,
    steps: 2,
    batchSize: 16,
    lr: 1e-3,
  };
  cifar.methods = [{ name: "seqlora" }, { name: "treelora" }];
  cifar.train = { ...cifar.train, epochs: 2, batchSize: 16, maxStepsPerEpoch: 2, logEvery: 1 };
  cifar.backend = "wasm";
  cifar.output = { resultsDir: results, cacheDir: cache, runId: "tiny", overwrite: false };
  cifar.quiet = true;
  await runSplitCifar(cifar);

  const trace = applyFlags(TRACE_SPEC, {
    flags: parseFlags([
      "--preset=byte-micro",
      "--max-length=32",
      "--max-prompt-length=24",
      "--pretrain-steps=2",
      "--max-steps-per-epoch=2",
      "--batch-size=2", // two steps per task: the loss curves have lines, not single points
      "--epochs=1",
      "--reduced-epochs=1",
      "--max-new-tokens=3",
      "--backend=wasm",
      `--results-dir=${results}`,
      `--cache-dir=${cache}`,
      "--out=tiny",
      "--quiet",
    ], experimentFlags(LM_TRACK)),
    track: LM_TRACK,
  });
  trace.data.synthetic = { seed: 1, train: 4, eval: 2, test: 2 };
  trace.model.pretrain.corpusLines = 50;
  await runTrace(trace);

  const log = console.log;
  console.log = () => {}; // the report command prints a line per run
  try {
    assertEquals(await runReportCli([`--results-dir=${results}`, "--no-png"]), 0);
  } finally {
    console.log = log;
  }
  return results;
}

/** Run id (as in `data-run`) → run folder, for every run under `results`. */
async function runsOf(results: string): Promise<Map<string, string>> {
  const { findRunDirs } = await import("../../lib/report/report_cli.ts");
  const dirs = await findRunDirs(results);
  return new Map(dirs.map((d) => [relative(results, d).split(SEPARATOR).join("/"), d]));
}

async function svgNames(runDir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(runDir, "plots"))) {
    if (e.name.endsWith(".svg")) names.push(e.name.slice(0, -4));
  }
  return names.sort();
}

function cellEquals(text: string, value: unknown): boolean {
  if (value === null || value === undefined) return text === "";
  if (typeof value === "number") {
    return Number.isNaN(value) ? text === "NaN" : Number(text) === value;
  }
  return text === String(value);
}

Deno.test("index.html: every run's summary table and figures, offline, checked in Chromium", async (t) => {
  const { readCsvRows } = await import("../../lib/report/tables.ts");
  const root = await Deno.makeTempDir({ prefix: "treelora-html-" });
  try {
    const results = await buildResults(root);
    const htmlPath = join(results, "index.html");
    const html = await Deno.readTextFile(htmlPath);
    const runs = await runsOf(results);
    assertEquals([...runs.keys()], ["split-cifar/tiny", "trace/tiny"]);

    await t.step("the page: tables, figures, facts, nothing fetched from elsewhere", async () => {
      assert(html.startsWith("<!doctype html>"));
      assert(!/<script|<link|@import|<iframe/i.test(html), "no scripts or external resources");
      for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) {
        const ref = m[1].replaceAll("&amp;", "&");
        assert(!/^[a-z][a-z0-9+.-]*:|^\/\//i.test(ref), `absolute reference ${ref}`);
        if (!ref.startsWith("#")) {
          const file = join(results, ...ref.split("/").map(decodeURIComponent));
          assert((await Deno.stat(file)).isFile, `link to a missing file: ${ref}`);
        }
      }
      const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
      assertEquals(ids.length, new Set(ids).size, "ids are unique after inlining the SVGs");
      for (const [id, dir] of runs) {
        const q = `data-run="${id}"`;
        assertEquals(html.split(`<table class="summary" ${q}>`).length - 1, 1, `one table: ${id}`);
        const figs = [...html.matchAll(new RegExp(`<figure ${q} data-plot="([^"]+)">`, "g"))]
          .map((m) => m[1]).sort();
        assertEquals(figs, await svgNames(dir), `every figure of ${id}/plots`);
        // deno-lint-ignore no-explicit-any
        const config = JSON.parse(await Deno.readTextFile(join(dir, "config.json"))) as any;
        const section = html.split(`<section class="run"`).slice(1).find((s) => s.includes(q))!;
        for (const fact of ["Scenario", "Data", "Seeds", "Epochs", "Backend", "Formulas"]) {
          assert(section.includes(`<dt>${fact}</dt>`), `${id}: fact ${fact}`);
        }
        assert(section.includes(config.scenario), `${id}: scenario`);
        assert(section.includes(`${config.backend.name} (requested`), `${id}: backend`);
        if (config.track === "lm") {
          const at = (config.data.tasks as string[]).map((name) => section.indexOf(`<li>${name}`));
          assert(at.every((x, i) => x > 0 && (i === 0 || x > at[i - 1])), `${id}: task order`);
        } else {
          assert(section.includes(config.data.classOrder.join(", ")), `${id}: class order`);
        }
        for (
          const m of new Set((await readCsvRows(join(dir, "metrics.csv"))).map((r) => r.metric))
        ) {
          assert(section.includes(`<code>${m}</code>:`), `${id}: formula of ${m}`);
        }
      }
    });

    await t.step({
      name: "in headless Chromium: every figure rendered, every cell equal to summary.csv",
      ignore: SKIP !== null,
      fn: async () => {
        const r = await runProbe(htmlPath);
        if (!r.ok) throw new Error(`browser probe failed: ${r.message}`);
        assertEquals(r.external, [], "no request leaves file://");
        assertEquals(r.failed, [], "no request failed");
        assertEquals(r.errors, [], "no page errors");
        assertEquals(r.facts.ids, r.facts.uniqueIds, "ids are unique in the DOM");
        let figures = 0;
        let marks = 0;
        let cells = 0;
        for (const [id, dir] of runs) {
          const figs = r.facts.figures.filter((f) => f.run === id);
          assertEquals(figs.map((f) => f.plot).sort(), await svgNames(dir), `figures of ${id}`);
          for (const f of figs) {
            assertEquals(f.svgs, 1, `${id}/${f.plot}: one SVG`);
            assert(
              f.width > 0 && f.height > 0,
              `${id}/${f.plot}: laid out (${f.width}×${f.height})`,
            );
            assert(f.visibleMarks > 0, `${id}/${f.plot}: ${f.marks} marks, none visible`);
            figures++;
            marks += f.visibleMarks;
          }
          const tables = r.facts.tables.filter((x) => x.run === id);
          assertEquals(tables.length, 1, `one table for ${id}`);
          const [table] = tables;
          const csvPath = join(dir, "summary.csv");
          const typed = await readCsvRows(csvPath);
          const raw = parseCsv(await Deno.readTextFile(csvPath));
          assertEquals(table.header, Object.keys(typed[0]), `${id}: header`);
          assertEquals(table.header, raw[0], `${id}: header (raw)`);
          assertEquals(table.rows.length, typed.length, `${id}: rows`);
          table.rows.forEach((row, i) => {
            assertEquals(row.length, table.header.length, `${id}: row ${i} width`);
            row.forEach((text, j) => {
              const col = table.header[j];
              assert(
                cellEquals(text, typed[i][col]),
                `${id} row ${i} ${col}: page ${JSON.stringify(text)}, csv ${typed[i][col]}`,
              );
              assertEquals(text, raw[i + 1][j], `${id} row ${i} ${col}: exact text`);
              cells++;
            });
          });
        }
        assert(figures > 0 && cells > 0);
        console.log(
          `html_report_test: ${runs.size} runs, ${figures} figures (${marks} visible marks), ` +
            `${cells} table cells checked in Chromium`,
        );
      },
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
