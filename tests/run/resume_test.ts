/**
 * Resume: a real child process is killed in the middle of a task and the run is
 * continued with `--resume`; the accuracy matrix must equal that of an
 * uninterrupted run with the same seeds (cpu backend).
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { readCsvRows } from "../../lib/report/tables.ts";

const SCRIPT = new URL("../../experiments/split_cifar.ts", import.meta.url).pathname;

function args(root: string, out: string): string[] {
  return [
    "run",
    "--allow-read",
    `--allow-write=${root}`,
    "--allow-env",
    SCRIPT,
    "--preset=micro",
    "--tasks=4",
    "--epochs=2",
    "--max-steps-per-epoch=3",
    "--batch-size=16",
    "--pretrain-steps=2",
    "--train-per-class=4",
    "--test-per-class=2",
    "--backend=cpu",
    "--methods=treelora,seqlora",
    `--results-dir=${join(root, "results")}`,
    `--cache-dir=${join(root, "cache")}`,
    `--out=${out}`,
    "--quiet",
  ];
}

async function run(argv: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: argv,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) throw new Error(`child failed (${code}): ${new TextDecoder().decode(stderr)}`);
}

async function finished(statusPath: string): Promise<number> {
  try {
    const s = JSON.parse(await Deno.readTextFile(statusPath));
    return s.finished["treelora/0"] ?? 0;
  } catch {
    return 0;
  }
}

Deno.test("a run killed mid-task and resumed gives the uninterrupted accuracy matrix", async () => {
  const root = await Deno.makeTempDir();
  await run(args(root, "full"));

  const dir = join(root, "results", "split-cifar", "killed");
  const child = new Deno.Command(Deno.execPath(), {
    args: args(root, "killed"),
    stdout: "null",
    stderr: "null",
  })
    .spawn();
  // Wait until task 1 is finished (treelora is then inside task 2), then kill.
  const t0 = Date.now();
  while ((await finished(join(dir, "status.json"))) < 1) {
    if (Date.now() - t0 > 120_000) throw new Error("child did not finish task 1 in time");
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await child.status;
  const before = await readCsvRows(join(dir, "matrix.csv"));
  assert(before.length < 10 + 10, "the killed run is incomplete");

  await run(
    // Where to cache is this command's choice (never read from the run folder): --cache-dir again.
    [
      ...args(root, "ignored").slice(0, 5),
      SCRIPT,
      `--resume=${dir}`,
      `--cache-dir=${join(root, "cache")}`,
      "--quiet",
    ].filter((
      a,
      i,
      all,
    ) =>
      // the permission flags and script, then only --resume/--quiet
      i < 4 || a === SCRIPT && all.indexOf(a) === i || a.startsWith("--resume") ||
      a === "--quiet" || a.startsWith("--cache-dir")
    ),
  );

  const key = (r: Record<string, unknown>) =>
    `${r.method}|${r.trained_through}|${r.task}|${r.acc_cil}|${r.acc_til}`;
  const full = (await readCsvRows(join(root, "results", "split-cifar", "full", "matrix.csv"))).map(
    key,
  ).sort();
  const resumed = (await readCsvRows(join(dir, "matrix.csv"))).map(key).sort();
  assertEquals(resumed.length, 20);
  assertEquals(resumed, full);
  const status = JSON.parse(await Deno.readTextFile(join(dir, "status.json")));
  assertEquals(status.complete, true);
  await Deno.remove(root, { recursive: true });
});
