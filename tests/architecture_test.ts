/**
 * The layers of lib/ and the one-way rule between them: every import of a lib/ module goes to
 * its own folder or to a layer below, and no set of modules imports itself round in a circle.
 * `deno task check` runs this file.
 *
 * Layers, top to bottom (docs/architecture.md draws them):
 *   tracks → run → report → train → methods → models → data, text → metrics → base files
 */
import { assertEquals } from "@std/assert";
import { dirname, fromFileUrl, join, relative, resolve } from "@std/path";
import { relativeImports } from "../lib/report/import_closure.ts";

/** The layers of lib/, top first; a layer is a list of folders or base files. */
const LAYERS: string[][] = [
  ["lib/tracks"],
  ["lib/run"],
  ["lib/report"],
  ["lib/train"],
  ["lib/methods"],
  ["lib/models"],
  ["lib/data", "lib/text"],
  ["lib/metrics"],
  ["lib/io.ts", "lib/random.ts", "lib/native_blas.ts", "lib/flags.ts"],
  ["lib/tensor.ts", "lib/elf_symbols.ts"],
];

const ROOT = resolve(dirname(fromFileUrl(import.meta.url)), "..");

/** An import edge between two repository-relative paths. */
interface Edge {
  from: string;
  to: string;
}

/** The layer unit of a lib/ path: its top folder under lib/, or the base file itself. */
function unitOf(path: string): string {
  const parts = path.split("/");
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : path;
}

/** The rank of a path's layer (0 = top), or -1 when no layer names it. */
function rankOf(path: string, layers: string[][]): number {
  const unit = unitOf(path);
  return layers.findIndex((layer) => layer.includes(unit));
}

/**
 * The violations of a module graph: edges that go up or sideways between layers, modules in no
 * layer, and import circles (strongly connected components of more than one module).
 */
function violations(edges: Edge[], layers: string[][]): string[] {
  const out: string[] = [];
  const nodes = new Set(edges.flatMap((e) => [e.from, e.to]));
  for (const n of nodes) {
    if (rankOf(n, layers) < 0) out.push(`${n} is in no layer`);
  }
  for (const { from, to } of edges) {
    if (unitOf(from) === unitOf(to)) continue;
    const a = rankOf(from, layers);
    const b = rankOf(to, layers);
    if (a >= 0 && b >= 0 && b <= a) {
      out.push(
        `${from} imports ${to}: ${b < a ? "an upward" : "a sideways"} edge (${unitOf(from)} → ${
          unitOf(to)
        })`,
      );
    }
  }
  // Tarjan's strongly connected components.
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  let counter = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(`import circle: ${component.sort().join(", ")}`);
    }
  };
  for (const n of [...nodes].sort()) if (!index.has(n)) visit(n);
  return out;
}

async function libEdges(): Promise<Edge[]> {
  const edges: Edge[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(join(ROOT, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(join(ROOT, path));
        for (const spec of relativeImports(text)) {
          const to = relative(ROOT, resolve(ROOT, dir, spec)).replaceAll("\\", "/");
          if (to.startsWith("lib/")) edges.push({ from: path, to });
          else edges.push({ from: path, to: `outside lib: ${to}` });
        }
      }
    }
  };
  await walk("lib");
  return edges;
}

Deno.test("lib/ imports run one way: no upward or sideways edge, no circle", async () => {
  const edges = await libEdges();
  const outside = edges.filter((e) => e.to.startsWith("outside lib"));
  assertEquals(outside.map((e) => `${e.from} imports ${e.to}`), []);
  assertEquals(violations(edges, LAYERS), []);
  // The graph is real: the runner reaches the registry, the tracks reach the runner.
  assertEquals(
    edges.some((e) =>
      e.from === "lib/tracks/vit_class_incremental.ts" && e.to === "lib/run/runner.ts"
    ),
    true,
  );
  assertEquals(edges.length > 100, true);
});

Deno.test("the layer check finds an upward edge, a sideways edge, an unknown module and a circle", () => {
  const layers = [["lib/run"], ["lib/report", "lib/train"], ["lib/io.ts"]];
  const found = violations([
    { from: "lib/run/a.ts", to: "lib/report/b.ts" }, // down: fine
    { from: "lib/report/b.ts", to: "lib/io.ts" }, // down: fine
    { from: "lib/report/b.ts", to: "lib/run/flags.ts" }, // up
    { from: "lib/report/b.ts", to: "lib/train/c.ts" }, // sideways
    { from: "lib/io.ts", to: "lib/extra/d.ts" }, // no layer
    { from: "lib/train/c.ts", to: "lib/train/e.ts" },
    { from: "lib/train/e.ts", to: "lib/train/c.ts" }, // circle inside a folder
  ], layers);
  assertEquals(found, [
    "lib/extra/d.ts is in no layer",
    "lib/report/b.ts imports lib/run/flags.ts: an upward edge (lib/report → lib/run)",
    "lib/report/b.ts imports lib/train/c.ts: a sideways edge (lib/report → lib/train)",
    "import circle: lib/train/c.ts, lib/train/e.ts",
  ]);
});

Deno.test("import specifiers are read from static, re-export and literal dynamic imports only", () => {
  const text = `
import { a } from "./a.ts";
import type {
  B,
} from "../b/b.ts";
export { c } from "./c.ts";
import "./side_effect.ts";
const d = await import("./d.ts");
// import { e } from "./commented.ts";
/* import { f } from "./block_commented.ts"; */
import { tf } from "@tensorflow/tfjs";
const g = await import(name);
`;
  assertEquals(relativeImports(text).sort(), [
    "../b/b.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./side_effect.ts",
  ]);
});
