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
