/**
 * Deterministic mutation helpers for the fuzz tests in this folder.
 *
 * - {@link Prng}: a tiny seeded PRNG (mulberry32), so every fuzz run applies the same
 *   mutations and a failing case can be reproduced from its seed and case index.
 * - {@link mutateBytes}: byte-level mutations (bit flip, byte overwrite, truncation,
 *   insertion, deletion), optionally confined to a region of the input.
 * - {@link mutateJsonValue} / {@link mutateJsonText}: structural mutations of a JSON
 *   document (drop a key or element, replace a value by one of another type — null,
 *   numbers, 1e308, negatives, NaN-ish strings, arrays, objects —, duplicate an array
 *   element or an object key, rename a key) and, for the text form, byte mutations too.
 * - {@link attempt} / {@link FuzzLog}: the outcome check shared by every module: a case
 *   ends in a successful read or in an `Error` whose message names the file.
 *
 * Not a test module itself (no `_test` suffix).
 *
 * @module
 */

/** mulberry32: a 32-bit seeded PRNG; good enough to pick mutations, fully deterministic. */
export class Prng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

/** A mutated input and a human-readable description of what was done to it. */
export interface Mutant<T> {
  value: T;
  description: string;
}

/** Byte mutation kinds of {@link mutateBytes}. */
export type ByteMutation = "flip" | "overwrite" | "truncate" | "insert" | "delete";

/** All byte mutation kinds. */
export const BYTE_MUTATIONS: readonly ByteMutation[] = [
  "flip",
  "overwrite",
  "truncate",
  "insert",
  "delete",
];

/**
 * Apply one byte mutation to a copy of `bytes`. Positions are drawn in `[region[0],
 * region[1])` (default: the whole input; truncation may cut anywhere in the region).
 * Every result differs from the input (a flip always changes a bit; an overwrite draws a
 * different byte; insertion/deletion/truncation change the length).
 */
export function mutateBytes(
  bytes: Uint8Array,
  rng: Prng,
  options: { kinds?: readonly ByteMutation[]; region?: [number, number] } = {},
): Mutant<Uint8Array> {
  const kind = rng.pick(options.kinds ?? BYTE_MUTATIONS);
  const [lo, hi] = options.region ?? [0, bytes.length];
  const at = lo + rng.int(Math.max(1, hi - lo));
  switch (kind) {
    case "flip": {
      const out = bytes.slice();
      const bit = rng.int(8);
      out[at] ^= 1 << bit;
      return { value: out, description: `flip bit ${bit} of byte ${at}` };
    }
    case "overwrite": {
      const out = bytes.slice();
      const v = (out[at] + 1 + rng.int(255)) & 255;
      out[at] = v;
      return { value: out, description: `overwrite byte ${at} with 0x${v.toString(16)}` };
    }
    case "truncate":
      return { value: bytes.slice(0, at), description: `truncate to ${at} bytes` };
    case "insert": {
      const n = rng.range(1, 16);
      const extra = Uint8Array.from({ length: n }, () => rng.int(256));
      const out = new Uint8Array(bytes.length + n);
      out.set(bytes.subarray(0, at));
      out.set(extra, at);
      out.set(bytes.subarray(at), at + n);
      return { value: out, description: `insert ${n} bytes [${extra}] at ${at}` };
    }
    case "delete": {
      const n = Math.min(rng.range(1, 16), bytes.length - at);
      const out = new Uint8Array(bytes.length - Math.max(n, 1));
      out.set(bytes.subarray(0, at));
      out.set(bytes.subarray(at + Math.max(n, 1)), at);
      return { value: out, description: `delete ${Math.max(n, 1)} bytes at ${at}` };
    }
  }
}

/** Values of every JSON type (and a few hostile ones) that replace a value in a document. */
export const HOSTILE_VALUES: readonly unknown[] = [
  null,
  0,
  -1,
  1,
  1.5,
  -0.5,
  1e308,
  -1e308,
  2 ** 53 + 2,
  "",
  "x",
  "NaN",
  "Infinity",
  "-1",
  "1e308",
  true,
  false,
  [],
  [null],
  [1, 2],
  {},
  { a: 1 },
  { hi: 1, lo: 2 },
];

type Path = (string | number)[];

function allPaths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => allPaths(v, [...prefix, i], out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) allPaths(v, [...prefix, k], out);
  }
  return out;
}

function getAt(value: unknown, path: Path): unknown {
  let v = value;
  for (const p of path) v = (v as Record<string | number, unknown>)[p];
  return v;
}

/** Kinds of structural JSON mutation. */
export type JsonMutation = "drop" | "replace" | "duplicate" | "rename" | "wrap";

/**
 * Serialise like `JSON.stringify`, but emit `dupKey` of the object at `dupPath` twice: first
 * with `dupValue`, then with its own value, or the other way round (`ownFirst`). With
 * JSON.parse the last occurrence wins.
 */
function stringifyDup(
  value: unknown,
  path: Path,
  dup: { path: Path; key: string; value: unknown; ownFirst: boolean },
): string {
  if (Array.isArray(value)) {
    return `[${value.map((v, i) => stringifyDup(v, [...path, i], dup)).join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const here = path.length === dup.path.length && path.every((p, i) => p === dup.path[i]);
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      const own = `${JSON.stringify(k)}:${stringifyDup(v, [...path, k], dup)}`;
      if (here && k === dup.key) {
        const other = `${JSON.stringify(k)}:${JSON.stringify(dup.value)}`;
        parts.push(...(dup.ownFirst ? [own, other] : [other, own]));
      } else parts.push(own);
    }
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * One structural mutation of a parsed JSON document, returned as JSON text (duplicate keys
 * cannot be expressed as a value). `document` is not modified.
 */
export function mutateJsonValue(document: unknown, rng: Prng): Mutant<string> {
  const paths = allPaths(document);
  const path = rng.pick(paths);
  const where = path.length === 0 ? "(root)" : path.map((p) => JSON.stringify(p)).join(".");
  const clone = structuredClone(document);
  const parentPath = path.slice(0, -1);
  const last = path[path.length - 1];
  const parent = path.length > 0 ? getAt(clone, parentPath) : undefined;
  const kind = rng.pick<JsonMutation>(
    path.length === 0 ? ["replace", "wrap"] : ["drop", "replace", "duplicate", "rename", "wrap"],
  );
  const replacement = rng.pick(HOSTILE_VALUES);
  const set = (v: unknown) => {
    if (path.length === 0) return v;
    (parent as Record<string | number, unknown>)[last] = v;
    return clone;
  };
  switch (kind) {
    case "replace":
      return {
        value: JSON.stringify(set(structuredClone(replacement))),
        description: `replace ${where} by ${JSON.stringify(replacement)}`,
      };
    case "wrap":
      return {
        value: JSON.stringify(set([getAt(clone, path)])),
        description: `wrap ${where} in an array`,
      };
    case "drop":
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete (parent as Record<string, unknown>)[last as string];
      return { value: JSON.stringify(clone), description: `drop ${where}` };
    case "rename":
      if (Array.isArray(parent)) {
        parent.reverse();
        return { value: JSON.stringify(clone), description: `reverse the array holding ${where}` };
      } else {
        const obj = parent as Record<string, unknown>;
        obj[`${last}_`] = obj[last as string];
        delete obj[last as string];
        return { value: JSON.stringify(clone), description: `rename key ${where} to ${last}_` };
      }
    case "duplicate": {
      if (Array.isArray(parent)) {
        parent.splice(last as number, 0, structuredClone(parent[last as number]));
        return { value: JSON.stringify(clone), description: `duplicate array element ${where}` };
      }
      const ownFirst = rng.next() < 0.5;
      const text = stringifyDup(clone, [], {
        path: parentPath,
        key: last as string,
        value: replacement,
        ownFirst,
      });
      return {
        value: text,
        description: `duplicate key ${where} with value ${JSON.stringify(replacement)} ` +
          (ownFirst ? "after" : "before") + " the original",
      };
    }
  }
}

/**
 * One mutation of a JSON file: structural (probability `structural`, default 0.6) or a byte
 * mutation of its UTF-8 text. Returns the new file bytes.
 */
export function mutateJsonText(
  document: unknown,
  rng: Prng,
  options: { structural?: number; text?: string } = {},
): Mutant<Uint8Array> {
  if (rng.next() < (options.structural ?? 0.6)) {
    const m = mutateJsonValue(document, rng);
    return { value: new TextEncoder().encode(m.value), description: m.description };
  }
  const text = options.text ?? JSON.stringify(document, null, 2);
  const m = mutateBytes(new TextEncoder().encode(text), rng);
  return { value: m.value, description: `text: ${m.description}` };
}

/** How one fuzz case ended. */
export type Outcome<T> =
  | { ok: true; value: T }
  | { ok: false; error: unknown };

/** Run `fn`, catching whatever it throws (rejections included). */
export async function attempt<T>(fn: () => T | Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return `non-Error thrown: ${String(error)}`;
}

/**
 * Collects the failures of a fuzz loop and reports them all at once, each with its case
 * index and mutation, so that a failure can be reproduced from the seed.
 */
export class FuzzLog {
  readonly failures: string[] = [];
  cases = 0;
  accepted = 0;
  refused = 0;
  constructor(readonly name: string, readonly seed: number) {}

  /** Record a failure of case `index`. */
  fail(index: number, mutation: string, why: string): void {
    this.failures.push(`case ${index} (${mutation}): ${why}`);
  }

  /**
   * Check that a refused case threw an `Error` whose message names one of `names` (the file
   * path or the `source` given). Returns true when the case was refused properly.
   */
  refusedNaming(
    index: number,
    mutation: string,
    error: unknown,
    names: readonly string[],
  ): boolean {
    this.refused++;
    if (!(error instanceof Error)) {
      this.fail(index, mutation, `threw something that is not an Error: ${errorText(error)}`);
      return false;
    }
    if (!names.some((n) => error.message.includes(n))) {
      this.fail(
        index,
        mutation,
        `error does not name the file (${names.join(" or ")}): ${errorText(error)}`,
      );
      return false;
    }
    return true;
  }

  /** Throw, listing up to 15 failures, when any case failed. */
  assertClean(): void {
    if (this.failures.length === 0) return;
    const shown = this.failures.slice(0, 15).join("\n  ");
    throw new Error(
      `${this.name} (seed ${this.seed}): ${this.failures.length} of ${this.cases} cases failed ` +
        `(${this.accepted} read, ${this.refused} refused):\n  ${shown}` +
        (this.failures.length > 15 ? `\n  … and ${this.failures.length - 15} more` : ""),
    );
  }
}

/** `Error: message` of anything thrown, for failure lines. */
export function describeError(error: unknown): string {
  return errorText(error);
}
