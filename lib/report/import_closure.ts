/**
 * The local modules a TypeScript module loads: the transitive closure of its
 * relative `import … from "./x.ts"`, `export … from "./x.ts"`, `import "./x.ts"`
 * and `import("./x.ts")` specifiers, read statically from the files on disk.
 *
 * Comments are removed before scanning, so a JSDoc example that imports a
 * module does not count. Bare specifiers (`@std/path`, `npm:…`) are not
 * followed: package versions are pinned in deno.json and recorded in every
 * run's config.json. The scan over-approximates (a type-only import counts as
 * a load), which errs towards calling a run stale.
 *
 * @module
 */

import { dirname, join, normalize, relative, SEPARATOR } from "@std/path";

const SPECIFIER = /\b(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g;

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/**
 * The relative specifiers one module's source text names, in order, without duplicates.
 *
 * @example
 * ```ts
 * import { relativeImports } from "./import_closure.ts";
 * relativeImports('import { a } from "./a.ts";\n/** import "./doc.ts" *\/\nexport * from "../b.ts";');
 * // ["./a.ts", "../b.ts"]
 * ```
 */
export function relativeImports(source: string): string[] {
  const out = new Set<string>();
  for (const m of stripComments(source).matchAll(SPECIFIER)) out.add(m[1]);
  return [...out];
}

function toPosix(path: string): string {
  return SEPARATOR === "/" ? path : path.split(SEPARATOR).join("/");
}

/**
 * Every module `entries` load, transitively, as paths relative to `root`
 * (posix separators, sorted), the entries included. A specifier whose file
 * does not exist is listed but not read. A module for which `options.skip`
 * returns true is neither listed nor followed (what only it imports is left
 * out too).
 *
 * @example
 * ```ts ignore
 * import { importClosure } from "./import_closure.ts";
 * const files = await importClosure(["lib/tracks/lm_trace.ts"], { root: "." });
 * files.includes("lib/train/lm_incremental.ts"); // true
 * ```
 */
export async function importClosure(
  entries: readonly string[],
  options: { root: string; skip?: (path: string) => boolean },
): Promise<string[]> {
  const seen = new Set<string>();
  const skipped = new Set<string>();
  const queue = entries.map((e) => toPosix(normalize(e)));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file) || skipped.has(file)) continue;
    if (options.skip?.(file)) {
      skipped.add(file);
      continue;
    }
    seen.add(file);
    let text: string;
    try {
      text = await Deno.readTextFile(join(options.root, file));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    for (const spec of relativeImports(text)) {
      const target = toPosix(relative(".", normalize(join(dirname(file), spec))));
      if (!seen.has(target)) queue.push(target);
    }
  }
  return [...seen].sort();
}
