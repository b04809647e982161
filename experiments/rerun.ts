/**
 * `deno task rerun RUN_DIR [--note=TEXT]` — regenerate a run folder from its
 * own `config.json`: the stored spec (methods, options, schedule, seeds,
 * orders, data, backbone) runs again, on the track it names, into the same
 * folder, replacing its results. This is how the committed runs are brought
 * up to the current code when `deno task report` marks them stale.
 *
 * The BLAS request is taken from the file only when it is `auto` or `off`: a
 * library path stored in a results folder is refused (pass `--blas PATH` to
 * the experiment yourself); the cache is `.cache`, whatever the file says. The
 * old run folder is emptied first (checkpoints, predictions, plots, method
 * summaries), so nothing of it can be resumed into the new one; a shard, or a sweep merged from shards, is refused (rerun its shards). `--note=TEXT` adds a line to the new
 * `config.json`'s `notes` (e.g. that timings were measured under contention)
 * and re-renders the report.
 *
 * @module
 */

import { basename, dirname, join, normalize, resolve } from "@std/path";
import { flagHelp, type FlagSpec, parseCommand } from "../lib/flags.ts";
import { readJson, withWriteRoots, writeJsonAtomic } from "../lib/io.ts";
import { writeRunReport } from "../lib/report/run_report.ts";
import { runExperiment } from "../lib/run/runner.ts";
import { LM_TRACK, type TraceSpec } from "../lib/tracks/lm_trace.ts";
import { type SplitCifarSpec, VIT_TRACK } from "../lib/tracks/vit_class_incremental.ts";

/** Flags of `deno task rerun`. */
export const RERUN_FLAGS: Record<string, FlagSpec> = {
  note: {
    type: "string",
    help: "--note=TEXT: a note for the new config.json's `notes` (may be given several times)",
  },
  "cache-dir": {
    type: "string",
    help:
      "cache for generated data and pre-trained backbones (default .cache; never read from the run folder)",
  },
  quiet: { type: "boolean", help: "no progress output" },
  help: { type: "boolean", help: "print this help" },
};

/**
 * Regenerate the run in `runDir` from its config.json; returns the exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await rerun(["results/trace/default"]));
 * ```
 */
export async function rerun(args: string[]): Promise<number> {
  let runDir: string;
  let notes: string[];
  let quiet: boolean;
  let cacheDir: string;
  try {
    // `--note=TEXT` may be given several times; each becomes one line of `notes`.
    const noteArgs = args.filter((a) => a.startsWith("--note="));
    const { flags, positionals: dirs } = parseCommand(
      args.filter((a) => !a.startsWith("--note=")),
      RERUN_FLAGS,
    );
    if (flags.help) {
      console.log(flagHelp("deno task rerun RUN_DIR [flags]", RERUN_FLAGS));
      return 0;
    }
    if (dirs.length !== 1) throw new Error("give exactly one RUN_DIR");
    runDir = dirs[0];
    notes = noteArgs.map((a) => a.slice("--note=".length));
    if (notes.some((n) => n.trim() === "")) throw new Error("--note needs a text (--note=TEXT)");
    quiet = flags.quiet === true;
    cacheDir = (flags["cache-dir"] as string | undefined) ?? ".cache";
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 2;
  }
  try {
    // deno-lint-ignore no-explicit-any
    const config = await readJson<any>(join(runDir, "config.json"));
    if (!config.spec) throw new Error(`${runDir}/config.json has no "spec"`);
    const spec = structuredClone(config.spec);
    const dir = resolve(runDir);
    if (basename(dirname(dir)) !== spec.experiment) {
      throw new Error(`${runDir} is not under a folder named ${spec.experiment}`);
    }
    if (spec.blas !== undefined && spec.blas !== "auto" && spec.blas !== "off") {
      throw new Error(
        `${runDir}/config.json asks for the BLAS library ${JSON.stringify(spec.blas)}; ` +
          "a library path is never taken from a results folder",
      );
    }
    // Relative to the working directory as given, so config.json names no machine path.
    const given = normalize(runDir).replace(/[\\/]+$/, "");
    spec.output = { ...spec.output, resultsDir: dirname(dirname(given)), runId: basename(dir) };
    spec.output.overwrite = true;
    spec.resume = false;
    spec.quiet = quiet || spec.quiet;
    // config.json's `track` is the track that made the run; runs made before the field existed
    // are ViT runs (the LM track always wrote it).
    const track = config.track ?? "vit";
    if (track !== "vit" && track !== "lm") {
      throw new Error(
        `${runDir}/config.json names the track "${track}", which rerun does not know`,
      );
    }
    if (spec.shard || config.grid?.mergedFrom) {
      throw new Error(
        `${runDir} is one shard of a sweep, or merged from shards: rerun each shard with its own ` +
          "command (docs/resume_and_sweeps.md), then `deno task report` merges them",
      );
    }
    // Where the run caches is not taken from the results folder either: `.cache` or --cache-dir.
    spec.output.cacheDir = cacheDir;
    // A fresh run: `overwrite` empties the folder first (RunWriter.create), so no checkpoint,
    // prediction, plot or method summary of the old run survives into the new one.
    const result = track === "lm"
      ? await runExperiment(spec as TraceSpec, LM_TRACK)
      : await runExperiment(spec as SplitCifarSpec, VIT_TRACK);
    if (notes.length > 0) {
      await withWriteRoots([spec.output.resultsDir], async () => {
        const path = join(result.runDir, "config.json");
        const fresh = await readJson<Record<string, unknown>>(path);
        fresh.notes = notes.map((n) => `added after the run: ${n}`);
        await writeJsonAtomic(path, fresh);
        await writeRunReport(result.runDir, { png: "auto" });
      });
    }
    console.log(result.runDir);
    return 0;
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await rerun(Deno.args));
}
