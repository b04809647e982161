/**
 * Fuzz test of the TRACE JSON reader (`readTraceTask` / `readTraceStream`, lib/data/trace.ts).
 *
 * Format: `<root>/<Task>/{train,eval,test}.json`, each a JSON array of
 * `{"prompt": string, "answer": string}` records (other fields ignored).
 *
 * Mutations (seeded, see mutate.ts): 300 cases, each mutating one split file of a valid
 * task: structural JSON mutations (drop a key or record, replace a value by null, a number,
 * 1e308, a negative, a NaN-ish string, an array or an object, duplicate a record or a key,
 * rename a key, wrap a value in an array) or byte mutations of the file text (flip,
 * overwrite, truncation, insertion, deletion).
 *
 * Asserted for every case: `readTraceStream` either returns, for each split, exactly the
 * records the mutated file holds (every record an object with string `prompt` and
 * `answer`), or throws an `Error` whose message names the mutated file.
 */

import { assert } from "@std/assert";
import { join } from "@std/path";
import { readTraceStream, TRACE_SPLITS, type TraceExample } from "../../lib/data/trace.ts";
import { attempt, FuzzLog, mutateJsonText, Prng } from "./mutate.ts";

const SEED = 0x7ace;
const CASES = 300;
const TASK = "FOMC";

function records(split: string, n: number): TraceExample[] {
  return Array.from({ length: n }, (_, k) => ({
    prompt: `${split} prompt ${k}: é ü 東`,
    answer: `${split}-${k}`,
  }));
}

/** What a correct reader returns for `bytes`, or null when the file is not a valid split. */
function expected(bytes: Uint8Array): TraceExample[] | null {
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  if (!Array.isArray(data)) return null;
  const out: TraceExample[] = [];
  for (const r of data) {
    if (r === null || typeof r !== "object" || Array.isArray(r)) return null;
    if (typeof r.prompt !== "string" || typeof r.answer !== "string") return null;
    out.push({ prompt: r.prompt, answer: r.answer });
  }
  return out;
}

Deno.test("fuzz TRACE split JSON: every mutation is read exactly or refused naming the file", async () => {
  const root = await Deno.makeTempDir({ prefix: "treelora-fuzz-trace-" });
  try {
    const taskDir = join(root, TASK);
    await Deno.mkdir(taskDir);
    const valid = Object.fromEntries(TRACE_SPLITS.map((s, i) => [s, records(s, 3 + i)]));
    const writeAll = async () => {
      for (const s of TRACE_SPLITS) {
        await Deno.writeTextFile(join(taskDir, `${s}.json`), JSON.stringify(valid[s], null, 1));
      }
    };
    await writeAll();
    const rng = new Prng(SEED);
    const log = new FuzzLog("TRACE split JSON", SEED);
    for (let c = 0; c < CASES; c++) {
      const split = rng.pick(TRACE_SPLITS);
      const path = join(taskDir, `${split}.json`);
      const m = mutateJsonText(valid[split], rng, {
        text: JSON.stringify(valid[split], null, 1),
      });
      const description = `${split}.json: ${m.description}`;
      await Deno.writeFile(path, m.value);
      log.cases++;
      const out = await attempt(() => readTraceStream(root, { tasks: [TASK] }));
      if (out.ok) {
        log.accepted++;
        const want = expected(m.value);
        const got = out.value[0]?.[split];
        if (want === null) log.fail(c, description, "accepted a file that is not a valid split");
        else if (JSON.stringify(got) !== JSON.stringify(want)) {
          log.fail(c, description, "records differ from the file's records");
        }
        for (const s of TRACE_SPLITS) {
          if (s !== split && JSON.stringify(out.value[0][s]) !== JSON.stringify(valid[s])) {
            log.fail(c, description, `untouched split ${s} read differently`);
          }
        }
      } else {
        log.refusedNaming(c, description, out.error, [path]);
      }
      await Deno.writeTextFile(path, JSON.stringify(valid[split], null, 1));
    }
    log.assertClean();
    assert(log.accepted > 0 && log.refused > 0, "both outcomes exercised");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
