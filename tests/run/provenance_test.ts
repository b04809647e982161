import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { collectProvenance, dependencyVersions, gitCommit } from "../../lib/run/provenance.ts";

Deno.test("gitCommit reads loose refs, packed refs and detached heads", async () => {
  const root = await Deno.makeTempDir();
  const git = join(root, ".git");
  await Deno.mkdir(join(git, "refs", "heads"), { recursive: true });
  await Deno.writeTextFile(join(git, "HEAD"), "ref: refs/heads/main\n");
  await Deno.writeTextFile(join(git, "refs", "heads", "main"), "a".repeat(40) + "\n");
  assertEquals(await gitCommit(root), "a".repeat(40));
  await Deno.remove(join(git, "refs", "heads", "main"));
  await Deno.writeTextFile(
    join(git, "packed-refs"),
    `# pack-refs\n${"b".repeat(40)} refs/heads/main\n`,
  );
  assertEquals(await gitCommit(root), "b".repeat(40));
  await Deno.writeTextFile(join(git, "HEAD"), "c".repeat(40) + "\n");
  assertEquals(await gitCommit(root), "c".repeat(40));
  assertEquals(await gitCommit(join(root, "nowhere")), null);
  await Deno.remove(root, { recursive: true });
});

Deno.test("gitCommit in a linked worktree: .git is a file naming the git dir; branch refs in the common dir", async () => {
  const root = await Deno.makeTempDir();
  const common = join(root, "repo.git");
  const wt = join(common, "worktrees", "snap");
  await Deno.mkdir(join(common, "refs", "heads"), { recursive: true });
  await Deno.mkdir(wt, { recursive: true });
  await Deno.writeTextFile(join(common, "refs", "heads", "main"), "d".repeat(40) + "\n");
  await Deno.writeTextFile(join(wt, "commondir"), "../..\n");
  const checkout = join(root, "snap");
  await Deno.mkdir(checkout);
  await Deno.writeTextFile(join(checkout, ".git"), `gitdir: ${wt}\n`);
  // Detached (the commit in the worktree's own HEAD), then on a branch (the ref in the common dir).
  await Deno.writeTextFile(join(wt, "HEAD"), "e".repeat(40) + "\n");
  assertEquals(await gitCommit(checkout), "e".repeat(40));
  await Deno.writeTextFile(join(wt, "HEAD"), "ref: refs/heads/main\n");
  assertEquals(await gitCommit(checkout), "d".repeat(40));
  await Deno.writeTextFile(join(checkout, ".git"), "not a gitdir line\n");
  assertEquals(await gitCommit(checkout), null);
  await Deno.remove(root, { recursive: true });
});

Deno.test("provenance records versions; dependency versions come from the import map", async () => {
  const p = await collectProvenance(".");
  assertEquals(p.tfjs, "4.22.0");
  assertEquals(p.deno, Deno.version.deno);
  const deps = await dependencyVersions(".");
  assertEquals(deps["@tensorflow/tfjs"], "npm:@tensorflow/tfjs@4.22.0");
  assertEquals(deps["arquero"], "npm:arquero@8.0.3");
});
