/**
 * The docs say what the code says: metric names and formula texts as `metrics.csv` writes them,
 * one card per registered method naming each of its options, the tasks and permissions of
 * `deno.json`, the flags the experiments' `--help` prints, and a README that is a front door
 * (short, the two commands and the test command, a link to every docs page, a headline table
 * copied from the committed REPORT.md it names).
 */

import { assert, assertEquals } from "@std/assert";
import { dirname, fromFileUrl, join, resolve } from "@std/path";
import { CL_METRICS } from "../../lib/metrics/cl_metrics.ts";
import { createMethod, methodNames } from "../../lib/methods/registry.ts";

const ROOT = resolve(dirname(fromFileUrl(import.meta.url)), "..", "..");
const read = (path: string) => Deno.readTextFile(join(ROOT, path));

/** The cells of the Markdown table rows of `text` (outer pipes dropped, cells trimmed). */
function tableRows(text: string): string[][] {
  return text.split("\n").filter((l) => /^\s*\|.*\|\s*$/.test(l)).map((l) =>
    l.trim().slice(1, -1).split("|").map((c) => c.trim())
  );
}

/** A section of a page: from its `## ` heading line that contains `marker` to the next `## `. */
function section(page: string, marker: string): string {
  const parts = page.split(/^(?=## )/m);
  const found = parts.find((p) => p.split("\n")[0].includes(marker));
  if (found === undefined) throw new Error(`no "## " section with ${marker}`);
  return found;
}

Deno.test("docs/metrics.md: every metric with its formula exactly as metrics.csv writes it", async () => {
  const page = await read("docs/metrics.md");
  const rows = tableRows(page);
  for (const m of CL_METRICS) {
    const row = rows.find((r) => r[0] === `\`${m.name}\``);
    if (row === undefined) throw new Error(`docs/metrics.md has no table row for \`${m.name}\``);
    assertEquals(row[1], `\`${m.formula}\``, `formula of ${m.name}`);
  }
  const documented = rows.map((r) => r[0]).filter((c) => /^`[a-z_]+`$/.test(c)).map((c) =>
    c.slice(1, -1)
  );
  const metricRows = documented.filter((n) => /^(acc|op|all|learning|forgetting|bwt|fwt)_/.test(n));
  assertEquals(metricRows, CL_METRICS.map((m) => m.name), "the table lists the metrics in order");
});

Deno.test("docs/methods.md: one card per registered method, naming each of its options", async () => {
  const page = await read("docs/methods.md");
  const problems: string[] = [];
  for (const track of ["vit", "lm"] as const) {
    for (const name of methodNames({ track })) {
      let card: string;
      try {
        card = section(page, `## \`${name}\``);
      } catch {
        problems.push(`no card "## \`${name}\` — …"`);
        continue;
      }
      // The card and the docs pages it links to.
      let text = card;
      for (const m of card.matchAll(/\]\(([a-z_]+\.md)(?:#[^)]*)?\)/g)) {
        text += await read(`docs/${m[1]}`);
      }
      const method = createMethod(name, { options: {}, track });
      for (const key of Object.keys(method.options())) {
        if (!text.includes(`\`${key}\``)) problems.push(`${name} (${track}): option \`${key}\``);
      }
      method.dispose();
    }
  }
  assertEquals(problems, [], `docs/methods.md lacks:\n  ${problems.join("\n  ")}`);
});

Deno.test("docs/security.md: the task block equals deno.json's tasks", async () => {
  const page = await read("docs/security.md");
  const block = /^```json\n([\s\S]*?)^```$/m.exec(page);
  if (block === null) throw new Error("docs/security.md has no json block of the tasks");
  const tasks = JSON.parse(await read("deno.json")).tasks;
  assertEquals(JSON.parse(block[1]), tasks, "update docs/security.md from deno.json");
});

Deno.test("docs/cli.md: exactly the flags the experiments' --help prints", async () => {
  const help = async (file: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", "--allow-ffi", file, "--help"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, `${file} --help: ${new TextDecoder().decode(out.stderr)}`);
    return [...text.matchAll(/^\s+--([a-z][a-z0-9-]*)/gm)].map((m) => m[1]);
  };
  const printed = new Set([
    ...await help("experiments/split_cifar.ts"),
    ...await help("experiments/trace.ts"),
  ]);
  const page = await read("docs/cli.md");
  const documented = new Set(
    tableRows(page).map((r) => /^`--([a-z][a-z0-9-]*)`$/.exec(r[0])?.[1]).filter((f) =>
      f !== undefined
    ),
  );
  assertEquals([...printed].filter((f) => !documented.has(f)), [], "flags missing in docs/cli.md");
  assertEquals([...documented].filter((f) => !printed.has(f)), [], "flags no --help prints");
});

Deno.test("README.md: a front door that links every docs page", async () => {
  const readme = await read("README.md");
  const lines = readme.split("\n").length - 1;
  assert(lines <= 170, `README.md has ${lines} lines; the manual belongs in docs/`);
  for (const command of ["deno task exp:split-cifar", "deno task exp:trace", "deno task test"]) {
    assert(readme.includes(command), `README.md names \`${command}\``);
  }
  const unlinked: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, "docs"))) {
    if (e.isFile && e.name.endsWith(".md") && !readme.includes(`](docs/${e.name})`)) {
      unlinked.push(`docs/${e.name}`);
    }
  }
  assertEquals(unlinked, [], "every docs page is linked from README.md");
});

Deno.test("README.md: the headline table is copied from the REPORT.md it names", async () => {
  const readme = await read("README.md");
  const headline = section(readme, "Headline");
  const link = /\]\((results\/[^)]+\/REPORT\.md)\)/.exec(headline);
  if (link === null) throw new Error("the headline section links no REPORT.md");
  const source = link[1];
  const report = tableRows(await read(source));
  const rows = tableRows(headline);
  const [header, , ...body] = rows;
  const reportHeader = report.find((r) => r[0] === "method" && r.includes("acc_final"))!;
  assert(body.length > 0, "the headline has a table");
  for (const row of body) {
    const match = report.find((r) => r[0] === row[0] && r.length === reportHeader.length);
    if (match === undefined) throw new Error(`${source} has no row for ${row[0]}`);
    header.forEach((column, i) => {
      const j = reportHeader.indexOf(column);
      assert(j >= 0, `${source} has no column ${column}`);
      assertEquals(row[i], match[j], `${row[0]} ${column}`);
    });
  }
});

/**
 * The result tables of a page: each Markdown table whose first header cell is `method`, with the
 * run it cites (the nearest `results/…/REPORT.md` link or path before it on the page).
 */
function resultTables(page: string): { source: string; rows: string[][] }[] {
  const out: { source: string; rows: string[][] }[] = [];
  const lines = page.split("\n");
  let source: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    for (const m of lines[i].matchAll(/(results\/[\w.-]+\/[\w.-]+)\/(?:REPORT\.md)?/g)) {
      source = m[1];
    }
    if (/^\|\s*method\s*\|/.test(lines[i]) && source !== null) {
      let j = i;
      while (j < lines.length && /^\|.*\|\s*$/.test(lines[j])) j++;
      out.push({ source, rows: tableRows(lines.slice(i, j).join("\n")) });
      i = j - 1;
    }
  }
  return out;
}

Deno.test("every results table in README.md and docs/ is copied from the run it cites", async () => {
  const pages = ["README.md"];
  for await (const e of Deno.readDir(join(ROOT, "docs"))) {
    if (e.isFile && e.name.endsWith(".md")) pages.push(`docs/${e.name}`);
  }
  const mismatches: string[] = [];
  let checked = 0;
  for (const page of pages.sort()) {
    for (const { source, rows } of resultTables(await read(page))) {
      const summary = tableRows(await read(join(source, "summary.md")));
      const [header, , ...body] = rows;
      const sourceHeader = summary[0];
      for (const row of body) {
        const match = summary.find((r) => r[0] === row[0] && r !== sourceHeader);
        if (match === undefined) {
          mismatches.push(`${page}: ${source} has no row for ${row[0]}`);
          continue;
        }
        header.forEach((column, i) => {
          const j = sourceHeader.indexOf(column);
          if (j < 0) mismatches.push(`${page}: ${source} has no column ${column}`);
          else if (row[i] !== match[j]) {
            mismatches.push(
              `${page}: ${row[0]} ${column} is ${row[i]}, ${source} says ${match[j]}`,
            );
          }
          checked++;
        });
      }
    }
  }
  assertEquals(mismatches, [], "update the tables from the runs' summary.md");
  assert(checked > 100, `only ${checked} cells checked`);
});
