/**
 * Fuzz test of a run folder's `config.json` and `status.json` readers: `resumeSpec`
 * (lib/run/runner.ts, reads `<root>/<experiment>/<run>/config.json`) and `RunWriter.reopen`
 * (lib/run/run_writer.ts, reads `status.json`, then `config.json`, whose spec hash must match
 * the one in status.json).
 *
 * The valid folder is written by `RunWriter.create` with a minimal `vit` spec for the
 * `split-cifar` experiment and 2 tasks; nothing is trained.
 *
 * Mutations (seeded, see mutate.ts): 200 of `config.json` and 200 of `status.json`, each
 * 60 % structural JSON mutations (drop a key, replace a value by null / a number / 1e308 / a
 * negative / a NaN-ish string / an array / an object, duplicate a key or an element, rename a
 * key, wrap a value in an array) and 40 % byte mutations of the file text.
 *
 * Asserted for every case: the reader either succeeds with a correct result or throws an
 * `Error` whose message names the file (or, for `resumeSpec`, the run folder it was given).
 * Correct means: `resumeSpec` returns a spec for experiment `split-cifar` with the output
 * pointing at this folder; `RunWriter.reopen` of a config.json whose spec changed is refused
 * (the spec hash differs), and a reopened writer carries the run's own owner. A stricter
 * status.json test (it failed before the fix, see FINDING below) also asserts that the task counts
 * a reopened writer reports are integers in 0..numTasks.
 */

import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { resumeSpec } from "../../lib/run/runner.ts";
import { RunWriter } from "../../lib/run/run_writer.ts";
import { attempt, FuzzLog, mutateJsonText, Prng } from "./mutate.ts";

const SEED = 0xc0f;
const CASES = 200;
const EXPERIMENT = "split-cifar";

function minimalSpec(resultsDir: string) {
  return {
    experiment: EXPERIMENT,
    methods: [{ name: "seqlora", label: "seqlora", options: { rank: 4 } }],
    train: { epochs: 1, batchSize: 8, lr: 0.001 },
    seed: 0,
    seeds: { data: 0, init: 1, method: 2 },
    seedList: null,
    backend: "cpu",
    output: { resultsDir, cacheDir: ".cache", runId: "run-1", overwrite: false },
    quiet: true,
  };
}

/** A fresh run folder `<root>/split-cifar/run-1` written by RunWriter.create. */
async function makeRun(root: string) {
  const dir = join(root, EXPERIMENT, "run-1");
  const config = { track: "vit", spec: minimalSpec(root) };
  const writer = await RunWriter.create(dir, { config, numTasks: 2 });
  await writer.recorder({ method: "seqlora", seed: 0 }).taskDone(0, {
    row: { cil: [0.5], til: [0.5] },
    timing: {
      trainSeconds: 1,
      evalSeconds: 1,
      trainImages: 8,
      imagesPerSecond: 8,
      components: {},
    },
  } as never);
  return {
    dir,
    owner: writer.owner,
    config: JSON.parse(await Deno.readTextFile(join(dir, "config.json"))),
    configText: await Deno.readTextFile(join(dir, "config.json")),
    status: JSON.parse(await Deno.readTextFile(join(dir, "status.json"))),
    statusText: await Deno.readTextFile(join(dir, "status.json")),
  };
}

Deno.test("fuzz run config.json: resumeSpec and RunWriter.reopen read it correctly or refuse naming it", async () => {
  const root = await Deno.makeTempDir({ prefix: "treelora-fuzz-run-config-" });
  try {
    const run = await makeRun(root);
    const path = join(run.dir, "config.json");
    // Sanity: the unmutated folder resumes.
    assertEquals(
      (await resumeSpec(run.dir, { otherFlags: [], track: "vit" })).experiment,
      EXPERIMENT,
    );
    assertEquals((await RunWriter.reopen(run.dir)).owner, run.owner);
    const specText = JSON.stringify(run.config.spec);
    const rng = new Prng(SEED);
    const log = new FuzzLog("run config.json", SEED);
    for (let c = 0; c < CASES; c++) {
      const m = mutateJsonText(run.config, rng, { text: run.configText });
      await Deno.writeFile(path, m.value);
      log.cases++;
      const spec = await attempt(() => resumeSpec(run.dir, { otherFlags: [], track: "vit" }));
      if (spec.ok) {
        log.accepted++;
        const s = spec.value as unknown as Record<string, Record<string, unknown>>;
        if (
          s.experiment as unknown !== EXPERIMENT || s.output.runId !== "run-1" ||
          s.output.resultsDir !== root || s.resume as unknown !== true
        ) {
          log.fail(c, m.description, `resumeSpec returned ${JSON.stringify(s).slice(0, 200)}`);
        }
      } else {
        log.refusedNaming(c, m.description, spec.error, [path, run.dir]);
      }
      const reopened = await attempt(() => RunWriter.reopen(run.dir));
      if (reopened.ok) {
        let parsedSpec: string | undefined;
        try {
          parsedSpec = JSON.stringify(JSON.parse(new TextDecoder().decode(m.value))?.spec ?? null);
        } catch {
          parsedSpec = undefined;
        }
        if (parsedSpec !== specText) {
          log.fail(c, m.description, "RunWriter.reopen accepted a config.json whose spec changed");
        } else if (JSON.stringify(reopened.value.owner) !== JSON.stringify(run.owner)) {
          log.fail(c, m.description, "RunWriter.reopen returned another owner");
        }
      } else {
        log.refusedNaming(c, m.description, reopened.error, [path]);
      }
      await Deno.writeTextFile(path, run.configText);
    }
    log.assertClean();
    assert(log.accepted > 0 && log.refused > 0, "both outcomes exercised");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function fuzzStatus(strict: boolean): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "treelora-fuzz-run-status-" });
  try {
    const run = await makeRun(root);
    const path = join(run.dir, "status.json");
    const rng = new Prng(SEED + 1);
    const log = new FuzzLog(strict ? "run status.json (strict)" : "run status.json", SEED + 1);
    for (let c = 0; c < CASES; c++) {
      const m = mutateJsonText(run.status, rng, { text: run.statusText });
      await Deno.writeFile(path, m.value);
      log.cases++;
      const out = await attempt(() => RunWriter.reopen(run.dir));
      if (out.ok) {
        log.accepted++;
        const w = out.value;
        if (typeof w.owner?.token !== "string" || w.owner.specSha256 !== run.owner.specSha256) {
          log.fail(c, m.description, `reopened with owner ${JSON.stringify(w.owner)}`);
        }
        if (strict) {
          const done = w.finished({ method: "seqlora", seed: 0 });
          const numTasks = JSON.parse(new TextDecoder().decode(m.value)).numTasks;
          if (!Number.isInteger(done) || done < 0 || done > numTasks) {
            log.fail(
              c,
              m.description,
              `accepted: finished("seqlora", 0) is ${JSON.stringify(done)} (numTasks ${numTasks})`,
            );
          }
        }
      } else {
        // A changed specSha256 is reported on config.json ("… hash differs from status.json").
        log.refusedNaming(c, m.description, out.error, [path, join(run.dir, "config.json")]);
      }
      await Deno.writeTextFile(path, run.statusText);
    }
    log.assertClean();
    assert(log.accepted > 0 && log.refused > 0, "both outcomes exercised");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("fuzz run status.json: RunWriter.reopen reads it or refuses naming it", () =>
  fuzzStatus(false));

// FINDING (fixed: RunWriter.reopen now validates "finished"): status.json's per-run task
// counts are not checked, so `"finished": {"seqlora/0": "x"}` (or [1], [null], "Infinity")
// reopens without error and `writer.finished({ method: "seqlora", seed: 0 })` returns that
// value instead of a task count in 0..numTasks.
Deno.test({
  name: "fuzz run status.json (strict): a reopened run reports task counts in 0..numTasks",
  fn: () => fuzzStatus(true),
});
