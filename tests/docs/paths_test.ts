/**
 * Every repository path the README and the docs/ pages name exists.
 *
 * A path is named in a link or image (`[text](target)`, resolved from the page's folder; a
 * `#fragment` on a link to a Markdown page must be one of that page's headings) or as a word of
 * code (inline `code` or a fenced block) that starts at the repository root: `lib/…`,
 * `experiments/…`, `tests/…`, `results/…`, `docs/…`, `.ci/…`, or one of the root files. Words
 * with placeholders (`<run-id>`, `{a,b}`, `…`, `$VAR`) are patterns, not paths, and are skipped; a
 * `*` in the last segment must match at least one file. Paths outside the repository
 * (`../shared/…`) and URLs are not checked.
 */

import { assertEquals } from "@std/assert";
import { dirname, fromFileUrl, globToRegExp, join, normalize, relative, resolve } from "@std/path";

const ROOT = resolve(dirname(fromFileUrl(import.meta.url)), "..", "..");

const ROOT_DIRS = ["lib/", "experiments/", "tests/", "results/", "docs/", ".ci/"];
const ROOT_FILES = ["mod.ts", "deno.json", "deno.lock", "README.md", ".gitignore", "LICENSE"];

/** The pages whose paths are checked: README.md and docs/*.md, repository-relative. */
async function pages(): Promise<string[]> {
  const out = ["README.md"];
  for await (const e of Deno.readDir(join(ROOT, "docs"))) {
    if (e.isFile && e.name.endsWith(".md")) out.push(`docs/${e.name}`);
  }
  return out.sort();
}

/** Where a path was named. */
interface Named {
  /** The page (repository-relative). */
  page: string;
  /** The path as written. */
  written: string;
  /** The repository-relative path it names. */
  path: string;
  /** A heading anchor the link points at, when it has one. */
  fragment?: string;
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The text of a page outside fenced blocks, and the fenced blocks' text. */
function split(markdown: string): { prose: string; fenced: string[] } {
  const fenced: string[] = [];
  const prose = markdown.replace(/^```[^\n]*\n([\s\S]*?)^```[ \t]*$/gm, (_m, body: string) => {
    fenced.push(body);
    return "";
  });
  return { prose, fenced };
}

/** The anchors of a Markdown file's headings. */
async function anchors(path: string): Promise<Set<string>> {
  const { prose } = split(await Deno.readTextFile(join(ROOT, path)));
  const out = new Set<string>();
  for (const m of prose.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) out.add(slug(m[1]));
  return out;
}

/** A code word, stripped of quotes and trailing punctuation, if it names a repository path. */
function rootPath(word: string): string | null {
  const w = word.replace(/^[("'`[]+/, "").replace(/[)"'`,;:.\]]+$/, "");
  if (/[<>{}…$]/.test(w)) return null;
  if (ROOT_FILES.includes(w)) return w;
  return ROOT_DIRS.some((d) => w.startsWith(d)) ? w : null;
}

/** Every path named on `page`. */
export async function namedPaths(page: string): Promise<Named[]> {
  const text = await Deno.readTextFile(join(ROOT, page));
  const { prose, fenced } = split(text);
  const out: Named[] = [];
  // Links and images, resolved from the page's folder.
  for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue;
    const [file, fragment] = target.split("#");
    const path = normalize(relative(ROOT, resolve(ROOT, dirname(page), file)));
    if (path.startsWith("..")) continue;
    out.push({ page, written: target, path, ...(fragment ? { fragment } : {}) });
  }
  // Code: inline spans and fenced blocks, word by word.
  const code = [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]).concat(fenced);
  for (const c of code) {
    for (const word of c.split(/[\s=]+/)) {
      const path = rootPath(word);
      if (path) out.push({ page, written: word, path: path.replace(/\/$/, "") });
    }
  }
  return out;
}

/** Whether a repository-relative path (or, with `*` in its last segment, a glob) exists. */
async function exists(path: string): Promise<boolean> {
  if (path.includes("*")) {
    const dir = join(ROOT, dirname(path));
    const re = globToRegExp(path.split("/").pop()!);
    try {
      for await (const e of Deno.readDir(dir)) if (re.test(e.name)) return true;
    } catch {
      return false;
    }
    return false;
  }
  try {
    await Deno.stat(join(ROOT, path));
    return true;
  } catch {
    return false;
  }
}

Deno.test("README.md and docs/*.md: every repository path they name exists", async () => {
  const missing: string[] = [];
  let checked = 0;
  for (const page of await pages()) {
    for (const n of await namedPaths(page)) {
      checked++;
      if (!(await exists(n.path))) {
        missing.push(`${n.page}: ${n.written}${n.written === n.path ? "" : ` (${n.path})`}`);
      } else if (n.fragment !== undefined && n.path.endsWith(".md")) {
        if (!(await anchors(n.path)).has(n.fragment)) {
          missing.push(`${n.page}: ${n.written} (no heading #${n.fragment} in ${n.path})`);
        }
      }
    }
  }
  const unique = [...new Set(missing)];
  assertEquals(
    unique,
    [],
    `${unique.length} of the ${checked} paths named in README.md and docs/ do not exist ` +
      `(rename the path in the page, or create the file):\n  ${unique.join("\n  ")}`,
  );
});

Deno.test("paths_test: what counts as a named path", () => {
  assertEquals(rootPath("`lib/methods/ewc.ts`,"), "lib/methods/ewc.ts");
  assertEquals(rootPath('experiments/split_cifar.ts"'), "experiments/split_cifar.ts");
  assertEquals(rootPath("results/split-cifar/<run-id>/"), null);
  assertEquals(rootPath("../mod.ts"), null);
  assertEquals(rootPath("mod.ts"), "mod.ts");
  assertEquals(rootPath("data/cifar100"), null);
  assertEquals(
    slug("TreeLoRA inside HiDe-LoRA (`hide-treelora`, the paper's ViT pipeline)"),
    "treelora-inside-hide-lora-hide-treelora-the-papers-vit-pipeline",
  );
});
