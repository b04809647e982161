/**
 * The sandbox (issue 18, classes 1–3, 6, 13), through the real entry points with the tasks'
 * own permission flags (read from deno.json), in a temporary working directory: a symbolic link
 * at the run folder or at `plots/` is refused and nothing is written where it points; `--out`
 * is one folder name; `--resume` never loads the BLAS library a results folder names; the
 * report skips a shard it cannot merge (naming it), takes `--results-dir X`, and ends with one
 * line on a folder it may not write.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { sha256Hex } from "../../lib/io.ts";
import { tinyElf } from "../helpers.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const CONFIG = join(REPO, "deno.json");
const TASKS: Record<string, string> = JSON.parse(await Deno.readTextFile(CONFIG)).tasks;

/** The `deno run` permission flags of a deno.json task, and its script (absolute). */
function task(name: string): { flags: string[]; script: string } {
  const words = TASKS[name].split(" ");
  assertEquals(words.slice(0, 2), ["deno", "run"], name);
  const flags = words.filter((w) => w.startsWith("--allow-") || w.startsWith("--deny-"));
  const script = words.find((w) => w.endsWith(".ts"))!;
  return { flags, script: join(REPO, script) };
}

const TINY = [
  "--preset=micro",
  "--tasks=2",
  "--epochs=1",
  "--max-steps-per-epoch=2",
  "--batch-size=16",
  "--pretrain-steps=2",
  "--train-per-class=2",
  "--test-per-class=1",
  "--backend=cpu",
  "--methods=seqlora",
];

async function run(
  name: string,
  args: string[],
  options: { cwd: string; flags?: string[] },
): Promise<{ code: number; out: string }> {
  const t = task(name);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      CONFIG,
      "--no-prompt",
      ...(options.flags ?? t.flags),
      t.script,
      ...args,
    ],
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string, prefix: string) {
    for await (const e of Deno.readDir(d)) {
      out.push(prefix + e.name);
      if (e.isDirectory) await walk(join(d, e.name), `${prefix}${e.name}/`);
    }
  }
  await walk(dir, "");
  return out.sort();
}

/** A temporary working directory with a finished tiny run in results/split-cifar/good. */
async function workspace(): Promise<{ root: string; outside: string }> {
  const root = await Deno.makeTempDir({ prefix: "treelora-sandbox-" });
  const outside = await Deno.makeTempDir({ prefix: "treelora-outside-" });
  const r = await run("exp:split-cifar", [...TINY, "--out=good", "--quiet"], { cwd: root });
  assertEquals(r.code, 0, r.out);
  return { root, outside };
}

Deno.test("sandbox: links at the run folder and at plots/ are refused; --out is one folder name", async () => {
  const { root, outside } = await workspace();
  try {
    // --out naming a link to a folder outside the results root.
    await Deno.symlink(outside, join(root, "results", "split-cifar", "evil"));
    const linked = await run("exp:split-cifar", [...TINY, "--out=evil", "--quiet"], { cwd: root });
    assertEquals(linked.code, 1, linked.out);
    assertStringIncludes(linked.out, "is a symbolic link");
    assertEquals(await listTree(outside), [], "nothing written through the link");

    // --out that is not one folder name: refused before any work.
    for (const bad of ["../../escape", "a/b", ".."]) {
      const r = await run("exp:split-cifar", [...TINY, `--out=${bad}`, "--quiet"], { cwd: root });
      assertEquals(r.code, 2, r.out);
      assertStringIncludes(r.out, "--out must be one folder name");
    }

    // plots/ replaced by a link: the report refuses to write there.
    const good = join(root, "results", "split-cifar", "good");
    await Deno.remove(join(good, "plots"), { recursive: true });
    await Deno.symlink(outside, join(good, "plots"));
    const report = await run("report", [], { cwd: root });
    assertEquals(report.code, 1, report.out);
    assertStringIncludes(report.out, `${join("good", "plots")} is a symbolic link`);
    assertEquals(await listTree(outside), [], "nothing written through the link");

    // --overwrite of a run folder holding a link removes the link, never what it points to.
    await Deno.writeTextFile(join(outside, "precious.txt"), "keep");
    const over = await run("exp:split-cifar", [...TINY, "--out=good", "--overwrite", "--quiet"], {
      cwd: root,
    });
    assertEquals(over.code, 0, over.out);
    assertEquals(await listTree(outside), ["precious.txt"]);
    assert((await Deno.lstat(join(good, "plots"))).isDirectory);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("sandbox: --resume never loads the BLAS library a results folder names", async () => {
  const { root, outside } = await workspace();
  try {
    // A "library" that exports cblas_sgemm, in a folder of the attacker's choosing.
    const evil = join(outside, "libevil.so");
    await Deno.writeFile(evil, tinyElf([{ name: "cblas_sgemm", defined: true }]));
    const dir = join(root, "results", "split-cifar", "good");
    const config = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    config.spec.blas = evil;
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
    // The attacker also fixes the spec hash in status.json (it is not a secret).
    const status = JSON.parse(await Deno.readTextFile(join(dir, "status.json")));
    status.owner.specSha256 = await sha256Hex(JSON.stringify(config.spec));
    await Deno.writeTextFile(join(dir, "status.json"), JSON.stringify(status));
    const r = await run("exp:split-cifar", [`--resume=${dir}`], { cwd: root });
    assertEquals(r.code, 0, r.out);
    assertStringIncludes(r.out, "backend: cpu (requested cpu;");
    assert(!r.out.includes("libevil"), r.out);
    // Other flags than --blas, --cache-dir and --quiet stay refused with --resume.
    const extra = await run("exp:split-cifar", [`--resume=${dir}`, "--lr=0.1"], { cwd: root });
    assertEquals(extra.code, 2, extra.out);
    assertStringIncludes(extra.out, "drop --lr");
    // A run of the other track is refused.
    const lm = await run("exp:trace", [`--resume=${dir}`], { cwd: root });
    assertEquals(lm.code, 2, lm.out);
    assertStringIncludes(lm.out, "the run was made on the vit track");
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("sandbox: report skips an unmergeable shard by name, takes --results-dir X, fails in one line on an unwritable folder", async () => {
  const { root, outside } = await workspace();
  try {
    const good = join(root, "results", "split-cifar", "good");
    const sweep = join(root, "results", "split-cifar", "sweep");
    await Deno.mkdir(sweep, { recursive: true });
    for (const shard of ["shard-1-of-2", "shard-2-of-2"]) {
      await Deno.mkdir(join(sweep, shard));
      for (const f of ["config.json", "status.json", "matrix.csv", "timings.csv"]) {
        await Deno.copyFile(join(good, f), join(sweep, shard, f));
      }
    }
    await Deno.writeTextFile(join(sweep, "shard-2-of-2", "status.json"), "{ torn");
    const report = await run("report", ["--results-dir", "results"], { cwd: root });
    assertEquals(report.code, 1, report.out);
    assertStringIncludes(
      report.out,
      `skipped ${join("results", "split-cifar", "sweep", "shard-2-of-2")}:`,
    );
    assertStringIncludes(report.out, "status.json");
    assert(!report.out.includes("    at "), "no stack trace");
    assert((await Deno.readTextFile(join(sweep, "matrix.csv"))).length > 0, "shard 1 merged");
    assert((await Deno.readTextFile(join(sweep, "REPORT.md"))).length > 0, "and reported");
    assertStringIncludes(await Deno.readTextFile(join(root, "results", "REPORT.md")), "## Skipped");

    // A results folder the report may not write: one line, exit 1.
    const flags = task("report").flags.map((f) =>
      f.startsWith("--allow-write") ? `--allow-write=${outside}` : f
    );
    await Deno.remove(sweep, { recursive: true });
    const denied = await run("report", ["--results-dir", "results"], { cwd: root, flags });
    assertEquals(denied.code, 1, denied.out);
    assert(!denied.out.includes("    at "), denied.out);
    assert(
      denied.out.split("\n").some((l) =>
        l.startsWith("error: ") || l.includes("NotCapable") || l.includes("Requires write access")
      ),
      denied.out,
    );
    assertEquals(await listTree(outside), []);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("permissions: no task but the test task has unrestricted --allow-ffi, --allow-run or --allow-write", () => {
  for (const [name, command] of Object.entries(TASKS)) {
    if (name === "test" || name === "check") continue;
    const words = command.split(" ");
    for (
      const bare of [
        "--allow-ffi",
        "--allow-run",
        "--allow-write",
        "--allow-net",
        "-A",
        "--allow-all",
      ]
    ) {
      assert(!words.includes(bare), `${name} grants ${bare} unrestricted`);
    }
  }
  assert(TASKS.bench.includes("--allow-run=cat,/usr/bin/python3"));
});
