/**
 * Whether a committed run is stale: made by code that has changed since. A
 * run's `config.json` records the git commit it was made at
 * (`provenance.gitCommit`) and its track (`track`). The files compared are
 * the `lib/` modules the track's module loads ({@link TRACK_MODULES},
 * {@link importClosure}), not following `lib/report/`: the report code (and
 * what only it imports) writes the files `deno task report` rewrites from the
 * run's stored rows (REPORT.md, summaries, intervals, plots), so a change
 * there reaches a run without a rerun. For a
 * run of an unknown track every file under `lib/` is compared. The run is
 * **stale** when a compared file differs between that commit and the working
 * tree (modified, added, deleted or untracked), **current** when none does,
 * and **unknown** when it cannot be told (no commit recorded, git not
 * permitted or not present, the commit not in this repository).
 * `deno task report` marks stale runs in the run's REPORT.md, in
 * `results/REPORT.md` and in `results/index.html`.
 *
 * Only a 40-hex commit id from `config.json` is ever handed to git, as one
 * argument after the options, so a crafted results folder cannot inject git
 * options.
 *
 * @module
 */

import { importClosure } from "./import_closure.ts";

/**
 * The module of each track (config.json's `track`), whose import closure is the code a run of
 * that track executes.
 */
export const TRACK_MODULES: Readonly<Record<string, string>> = Object.freeze({
  lm: "lib/tracks/lm_trace.ts",
  vit: "lib/tracks/vit_class_incremental.ts",
});

/** The verdict on one run. */
export interface Staleness {
  /** `stale`: lib/ changed since the run's commit; `current`: it did not; `unknown`: cannot tell. */
  status: "current" | "stale" | "unknown";
  /** The run's commit (from config.json), or null. */
  commit: string | null;
  /** The compared lib/ files that differ from that commit (repository-relative, sorted). */
  changed: string[];
  /** Files under lib/ that differ but that the run's code does not load (not counted). */
  unrelated: string[];
  /** One sentence saying what was found, for the reports. */
  reason: string;
}

/** How git is run: `args` after `git`, in `cwd`; exit code and stdout. Injectable for tests. */
export type GitRunner = (
  args: string[],
  cwd: string,
) => Promise<{ code: number; stdout: string }>;

async function runGit(args: string[], cwd: string): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "null" })
    .output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/**
 * The staleness of a run made at `commit`, judged against the working tree of the git
 * repository at `repoRoot` (the folder `lib/` is compared under).
 *
 * @example
 * ```ts ignore
 * const s = await runStaleness(config.provenance?.gitCommit ?? null, {
 *   repoRoot: ".",
 *   track: config.track,
 * });
 * if (s.status === "stale") console.log(s.reason);
 * ```
 */
export async function runStaleness(
  commit: string | null | undefined,
  options: { repoRoot: string; track?: string | null; git?: GitRunner },
): Promise<Staleness> {
  const unknown = (reason: string): Staleness => ({
    status: "unknown",
    commit: commit ?? null,
    changed: [],
    unrelated: [],
    reason,
  });
  if (!commit) return unknown("config.json records no git commit");
  if (!/^[0-9a-f]{40}$/.test(commit)) {
    return unknown(`config.json's commit "${commit.slice(0, 60)}" is not a 40-hex git commit id`);
  }
  const git = options.git ?? runGit;
  if (!options.git) {
    const permitted = await Deno.permissions.query({ name: "run", command: "git" });
    if (permitted.state !== "granted") {
      return unknown("git may not be run (the task lacks --allow-run=git)");
    }
  }
  try {
    const known = await git(["cat-file", "-e", `${commit}^{commit}`], options.repoRoot);
    if (known.code !== 0) return unknown(`commit ${commit.slice(0, 10)} is not in this repository`);
    const diff = await git(["diff", "--name-only", commit, "--", "lib/"], options.repoRoot);
    const untracked = await git(
      ["ls-files", "--others", "--exclude-standard", "--", "lib/"],
      options.repoRoot,
    );
    if (diff.code !== 0 || untracked.code !== 0) return unknown("git diff failed");
    const differing = [
      ...new Set(
        `${diff.stdout}\n${untracked.stdout}`.split("\n").map((l) => l.trim()).filter((l) => l),
      ),
    ].sort();
    const entry = options.track && Object.hasOwn(TRACK_MODULES, options.track)
      ? TRACK_MODULES[options.track]
      : undefined;
    let scope = "under lib/";
    let changed = differing;
    let unrelated: string[] = [];
    if (entry) {
      const report = (f: string) => f.startsWith("lib/report/");
      const loaded = new Set(
        await importClosure([entry], { root: options.repoRoot, skip: report }),
      );
      changed = differing.filter((f) => loaded.has(f));
      unrelated = differing.filter((f) => !loaded.has(f));
      scope = `that the ${options.track} track loads (${entry} and its imports; ` +
        "lib/report/ and what only it imports aside)";
    }
    const others = unrelated.length > 0
      ? `; ${unrelated.length} other lib/ file(s) changed that its code does not load or that ` +
        "only render reports"
      : "";
    if (changed.length === 0) {
      return {
        status: "current",
        commit,
        changed,
        unrelated,
        reason: `the lib/ files ${scope} are as at commit ${commit.slice(0, 10)}${others}`,
      };
    }
    const shown = changed.slice(0, 8).join(", ") + (changed.length > 8 ? ", …" : "");
    return {
      status: "stale",
      commit,
      changed,
      unrelated,
      reason: `made at commit ${commit.slice(0, 10)}; ${changed.length} file(s) ${scope} ` +
        `changed since (${shown}): its numbers may not be what the current code gives`,
    };
  } catch (err) {
    return unknown(`git could not be run: ${(err as Error).message}`);
  }
}
