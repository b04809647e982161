/**
 * Strict command-line flags: every flag is declared with its type and help
 * text; an unknown or malformed flag is an error that names it (a flag that is
 * parsed and silently ignored is the failure mode to avoid, style.md).
 *
 * @module
 */

import { parseArgs } from "@std/cli";

/** Declaration of one flag. */
export interface FlagSpec {
  /** `string`, `number`, `boolean`, `int-list` ("1,2,3") or `string-list` ("a,b"). */
  type: "string" | "number" | "boolean" | "int-list" | "string-list";
  /** One-line help. */
  help: string;
  /** Default shown in help (the spec's value is the real default). */
  default?: string;
}

/** Parsed flag values keyed by flag name (kebab-case as typed). */
export type FlagValues = Record<
  string,
  string | number | boolean | number[] | string[] | undefined
>;

/** Render the help text of a flag table. */
export function flagHelp(usage: string, specs: Record<string, FlagSpec>): string {
  const lines = [usage, "", "Flags:"];
  const width = Math.max(...Object.keys(specs).map((k) => k.length)) + 4;
  for (const [name, spec] of Object.entries(specs)) {
    const def = spec.default !== undefined ? ` (default: ${spec.default})` : "";
    lines.push(`  --${name.padEnd(width)}${spec.help}${def}`);
  }
  return lines.join("\n");
}

/**
 * Parse `args` against `specs`. Throws on unknown flags, missing values and bad numbers.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * const v = parseFlags(["--epochs", "2,1"], { epochs: { type: "int-list", help: "epochs" } });
 * // v.epochs = [2, 1]
 * ```
 */
export function parseFlags(args: string[], specs: Record<string, FlagSpec>): FlagValues {
  const booleans = Object.entries(specs).filter(([, s]) => s.type === "boolean").map(([k]) => k);
  const strings = Object.entries(specs).filter(([, s]) => s.type !== "boolean").map(([k]) => k);
  const unknown: string[] = [];
  const raw = parseArgs(args, {
    boolean: booleans,
    string: strings,
    unknown: (arg: string) => {
      unknown.push(arg);
      return false;
    },
  });
  if (unknown.length > 0) {
    throw new Error(
      `unknown argument(s): ${unknown.join(" ")}; known flags: ${
        Object.keys(specs).map((k) => `--${k}`).join(" ")
      }`,
    );
  }
  const out: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    const v = raw[name];
    if (v === undefined) continue;
    if (spec.type === "boolean") {
      out[name] = Boolean(v);
      continue;
    }
    if (typeof v !== "string" || v === "") {
      throw new Error(`--${name} needs a value (${spec.help})`);
    }
    if (spec.type === "string") out[name] = v;
    else if (spec.type === "number") out[name] = parseNumber(name, v);
    else if (spec.type === "int-list") {
      out[name] = v.split(",").map((x) => {
        const n = parseNumber(name, x.trim());
        if (!Number.isInteger(n)) throw new Error(`--${name}: "${x}" is not an integer`);
        return n;
      });
    } else out[name] = v.split(",").map((x) => x.trim()).filter((x) => x.length > 0);
  }
  return out;
}

function parseNumber(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name}: "${v}" is not a number`);
  return n;
}

/**
 * Split a command line into flags (parsed against `specs`, both `--name=value` and
 * `--name value` forms) and positional arguments (e.g. run folders), in order.
 *
 * @example
 * ```ts
 * import { parseCommand } from "./flags.ts";
 * const { flags, positionals } = parseCommand(["--results-dir", "out", "out/a"], {
 *   "results-dir": { type: "string", help: "root" },
 * });
 * // flags["results-dir"] = "out"; positionals = ["out/a"]
 * ```
 */
export function parseCommand(
  args: string[],
  specs: Record<string, FlagSpec>,
): { flags: FlagValues; positionals: string[] } {
  const flagArgs: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) {
      positionals.push(a);
      continue;
    }
    flagArgs.push(a);
    const name = a.slice(2);
    const spec = specs[name];
    // `--name value`: the next argument is the value of a non-boolean flag.
    if (!a.includes("=") && spec && spec.type !== "boolean" && i + 1 < args.length) {
      flagArgs.push(args[++i]);
    }
  }
  return { flags: parseFlags(flagArgs, specs), positionals };
}
