import { assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { type GitRunner, runStaleness } from "../../lib/report/staleness.ts";

async function git(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["-c", "user.email=t@t", "-c", "user.name=t", ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("a run is current until lib/ changes, then stale with the changed files named", async () => {
  const repo = await Deno.makeTempDir();
  await git(repo, "init", "-q");
  await Deno.mkdir(join(repo, "lib"));
  await Deno.writeTextFile(join(repo, "lib", "a.ts"), "export const a = 1;\n");
  await Deno.writeTextFile(join(repo, "README.md"), "hello\n");
  await git(repo, "add", ".");
  await git(repo, "commit", "-q", "-m", "one");
  const commit = await git(repo, "rev-parse", "HEAD");

  let s = await runStaleness(commit, { repoRoot: repo });
  assertEquals([s.status, s.changed], ["current", []]);

  // A change outside lib/ does not make the run stale.
  await Deno.writeTextFile(join(repo, "README.md"), "changed\n");
  s = await runStaleness(commit, { repoRoot: repo });
  assertEquals(s.status, "current");

  // An uncommitted change and an untracked file under lib/ do.
  await Deno.writeTextFile(join(repo, "lib", "a.ts"), "export const a = 2;\n");
  await Deno.writeTextFile(join(repo, "lib", "b.ts"), "export const b = 1;\n");
  s = await runStaleness(commit, { repoRoot: repo });
  assertEquals([s.status, s.changed], ["stale", ["lib/a.ts", "lib/b.ts"]]);
  assertStringIncludes(s.reason, "2 file(s) under lib/ changed since (lib/a.ts, lib/b.ts)");

  // Committed later: still stale against the run's commit.
  await git(repo, "add", ".");
  await git(repo, "commit", "-q", "-m", "two");
  s = await runStaleness(commit, { repoRoot: repo });
  assertEquals(s.changed, ["lib/a.ts", "lib/b.ts"]);
  // A run made at the new commit is current.
  s = await runStaleness(await git(repo, "rev-parse", "HEAD"), { repoRoot: repo });
  assertEquals(s.status, "current");
  await Deno.remove(repo, { recursive: true });
});

Deno.test("no commit, a commit not in the repository, or a crafted commit string give unknown", async () => {
  const calls: string[][] = [];
  const fake: GitRunner = (args) => {
    calls.push(args);
    return Promise.resolve({ code: 1, stdout: "" });
  };
  assertEquals((await runStaleness(null, { repoRoot: ".", git: fake })).status, "unknown");
  const crafted = await runStaleness("--output=/tmp/x", { repoRoot: ".", git: fake });
  assertEquals(crafted.status, "unknown");
  assertStringIncludes(crafted.reason, "is not a 40-hex git commit id");
  assertEquals(calls, []); // git was never run with a crafted argument
  const missing = await runStaleness("a".repeat(40), { repoRoot: ".", git: fake });
  assertEquals(missing.status, "unknown");
  assertStringIncludes(missing.reason, "is not in this repository");
  assertEquals(calls, [["cat-file", "-e", `${"a".repeat(40)}^{commit}`]]);
});

Deno.test("with a track, only the lib/ files its module loads count, lib/report/ aside", async () => {
  const repo = await Deno.makeTempDir();
  await git(repo, "init", "-q");
  await Deno.mkdir(join(repo, "lib", "tracks"), { recursive: true });
  await Deno.mkdir(join(repo, "lib", "report"), { recursive: true });
  const write = (path: string, text: string) => Deno.writeTextFile(join(repo, path), text);
  await write(
    "lib/tracks/lm_trace.ts",
    'import { a } from "../a.ts";\nimport { r } from "../report/r.ts";\nexport const t = a + r;\n',
  );
  await write("lib/tracks/vit_class_incremental.ts", 'export * from "../v.ts";\n');
  await write("lib/a.ts", 'export { shared as a } from "./shared.ts";\n');
  await write("lib/shared.ts", "export const shared = 1;\n");
  await write("lib/v.ts", "export const v = 1;\n");
  await write("lib/report/r.ts", 'import "../only_report.ts";\nexport const r = 1;\n');
  await write("lib/only_report.ts", "export const o = 1;\n");
  await git(repo, "add", ".");
  await git(repo, "commit", "-q", "-m", "one");
  const commit = await git(repo, "rev-parse", "HEAD");

  // A file only the vit track loads changes: the lm run stays current and says so.
  await write("lib/v.ts", "export const v = 2;\n");
  let s = await runStaleness(commit, { repoRoot: repo, track: "lm" });
  assertEquals([s.status, s.changed, s.unrelated], ["current", [], ["lib/v.ts"]]);
  assertStringIncludes(s.reason, "1 other lib/ file(s) changed");
  s = await runStaleness(commit, { repoRoot: repo, track: "vit" });
  assertEquals([s.status, s.changed], ["stale", ["lib/v.ts"]]);
  assertStringIncludes(s.reason, "that the vit track loads");

  // A report module the lm track imports changes, and a module only the report imports: still
  // current (the report rewrites what they make).
  await write("lib/report/r.ts", 'import "../only_report.ts";\nexport const r = 2;\n');
  await write("lib/only_report.ts", "export const o = 2;\n");
  s = await runStaleness(commit, { repoRoot: repo, track: "lm" });
  assertEquals([s.status, s.unrelated], [
    "current",
    ["lib/only_report.ts", "lib/report/r.ts", "lib/v.ts"],
  ]);

  // A transitive import changes: stale, the file named.
  await write("lib/shared.ts", "export const shared = 2;\n");
  s = await runStaleness(commit, { repoRoot: repo, track: "lm" });
  assertEquals([s.status, s.changed], ["stale", ["lib/shared.ts"]]);

  // An unknown track (or a prototype key from a crafted config.json) compares all of lib/.
  for (const track of ["other", "constructor", null]) {
    s = await runStaleness(commit, { repoRoot: repo, track });
    assertEquals(s.changed, ["lib/only_report.ts", "lib/report/r.ts", "lib/shared.ts", "lib/v.ts"]);
  }
  await Deno.remove(repo, { recursive: true });
});
