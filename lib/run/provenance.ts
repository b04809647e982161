/**
 * How a run was made: versions, platform and git commit, recorded in every
 * `config.json`. Needs only read permission (the commit is read from `.git`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join, resolve } from "@std/path";

/** Versions and platform of a run. */
export interface Provenance {
  /** Git commit of the project, or null when unknown. */
  gitCommit: string | null;
  /** Deno version. */
  deno: string;
  /** V8 version. */
  v8: string;
  /** TypeScript version. */
  typescript: string;
  /** TensorFlow.js version. */
  tfjs: string;
  /** OS and architecture. */
  platform: string;
  /** Logical CPUs visible to the runtime. */
  cpus: number;
  /** ISO time the run started. */
  startedAt: string;
}

/** Pinned dependency versions, from the import map of deno.json. */
export async function dependencyVersions(root: string): Promise<Record<string, string>> {
  try {
    const cfg = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
    const out: Record<string, string> = {};
    for (const [name, spec] of Object.entries(cfg.imports ?? {})) out[name] = String(spec);
    return out;
  } catch {
    return {};
  }
}

/**
 * The commit HEAD points to, read from `<root>/.git` without running git.
 *
 * @example
 * ```ts ignore
 * const commit = await gitCommit(".");
 * ```
 */
export async function gitCommit(root: string): Promise<string | null> {
  try {
    // A linked worktree (`git worktree add`) or a submodule has a `.git` file naming the
    // git directory; its branch refs live in the common directory (`commondir`).
    let gitDir = join(root, ".git");
    if ((await Deno.stat(gitDir)).isFile) {
      const line = (await Deno.readTextFile(gitDir)).trim();
      if (!line.startsWith("gitdir: ")) return null;
      gitDir = resolve(root, line.slice("gitdir: ".length));
    }
    let commonDir = gitDir;
    try {
      commonDir = resolve(gitDir, (await Deno.readTextFile(join(gitDir, "commondir"))).trim());
    } catch {
      // not a linked worktree
    }
    const head = (await Deno.readTextFile(join(gitDir, "HEAD"))).trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    for (const dir of [gitDir, commonDir]) {
      try {
        return (await Deno.readTextFile(join(dir, ref))).trim();
      } catch {
        // try the next place
      }
    }
    const packed = await Deno.readTextFile(join(commonDir, "packed-refs"));
    const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`));
    return line ? line.split(" ")[0] : null;
  } catch {
    return null;
  }
}

export async function collectProvenance(root: string): Promise<Provenance> {
  return {
    gitCommit: await gitCommit(root),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: tf.version.tfjs,
    platform: `${Deno.build.os}-${Deno.build.arch}`,
    cpus: navigator.hardwareConcurrency,
    startedAt: new Date().toISOString(),
  };
}
