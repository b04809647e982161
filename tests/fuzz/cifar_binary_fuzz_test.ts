/**
 * Fuzz test of the CIFAR-100 binary reader (`readCifar100`, lib/data/cifar100.ts).
 *
 * Format: `<dir>/train.bin`, a sequence of 3,074-byte records (coarse label, fine label,
 * 3 × 1024 pixel bytes), plus optional `fine_label_names.txt` / `coarse_label_names.txt`.
 *
 * Mutations (seeded, see mutate.ts): 300 byte mutations of a valid 2-record `train.bin`
 * (bit flips and overwrites — half of them aimed at the label bytes —, truncation,
 * insertion, deletion) and 200 mutations of `fine_label_names.txt` (byte mutations, dropped,
 * duplicated and emptied lines).
 *
 * Asserted for every case: the read either succeeds and returns exactly what the mutated
 * file holds (whole records, labels in range, pixels byte for byte, names line for line), or
 * it throws an `Error` whose message names the file. Pixel bytes carry no checksum, so a
 * pixel flip is read back as the flipped value (and must be).
 */

import { assert } from "@std/assert";
import { join } from "@std/path";
import {
  CIFAR100_PIXEL_BYTES,
  CIFAR100_RECORD_BYTES,
  encodeCifar100,
  readCifar100,
} from "../../lib/data/cifar100.ts";
import type { ImageSet } from "../../lib/data/task.ts";
import { attempt, FuzzLog, mutateBytes, Prng } from "./mutate.ts";

const SEED = 0xc1fa;
const BIN_CASES = 300;
const NAME_CASES = 200;

function validSet(): ImageSet {
  const count = 2;
  const pixels = new Uint8Array(count * CIFAR100_PIXEL_BYTES);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + 7) & 255;
  return {
    count,
    size: 32,
    pixels,
    fine: Int32Array.of(99, 3),
    coarse: Int32Array.of(19, 0),
    source: "fuzz",
  };
}

/** Check a successful read against the bytes on disk; returns why it is wrong, or null. */
function wrongRead(set: ImageSet, bytes: Uint8Array): string | null {
  if (bytes.length % CIFAR100_RECORD_BYTES !== 0 || bytes.length === 0) {
    return `accepted a ${bytes.length}-byte file (not a whole number of records)`;
  }
  const count = bytes.length / CIFAR100_RECORD_BYTES;
  if (set.count !== count) return `count ${set.count}, expected ${count}`;
  for (let i = 0; i < count; i++) {
    const at = i * CIFAR100_RECORD_BYTES;
    if (bytes[at] >= 20 || bytes[at + 1] >= 100) {
      return `accepted record ${i} with labels ${bytes[at]}/${bytes[at + 1]} out of range`;
    }
    if (set.coarse[i] !== bytes[at] || set.fine[i] !== bytes[at + 1]) {
      return `record ${i}: labels ${set.coarse[i]}/${set.fine[i]}, file has ${bytes[at]}/${
        bytes[at + 1]
      }`;
    }
    for (let k = 0; k < CIFAR100_PIXEL_BYTES; k++) {
      if (set.pixels[i * CIFAR100_PIXEL_BYTES + k] !== bytes[at + 2 + k]) {
        return `record ${i}: pixel byte ${k} differs from the file`;
      }
    }
  }
  return null;
}

Deno.test("fuzz cifar100 train.bin: every mutation is read exactly or refused naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-fuzz-cifar-" });
  try {
    const path = join(dir, "train.bin");
    const valid = encodeCifar100(validSet());
    const rng = new Prng(SEED);
    const log = new FuzzLog("cifar100 train.bin", SEED);
    for (let c = 0; c < BIN_CASES; c++) {
      // Half the flips/overwrites hit a label byte (0 or 1 of a record): those are detectable.
      const onLabel = rng.next() < 0.5;
      const record = rng.int(2) * CIFAR100_RECORD_BYTES;
      const m = onLabel
        ? mutateBytes(valid, rng, { kinds: ["flip", "overwrite"], region: [record, record + 2] })
        : mutateBytes(valid, rng);
      await Deno.writeFile(path, m.value);
      log.cases++;
      const out = await attempt(() => readCifar100(dir, { split: "train" }));
      if (out.ok) {
        log.accepted++;
        const why = wrongRead(out.value, m.value);
        if (why) log.fail(c, m.description, why);
      } else {
        log.refusedNaming(c, m.description, out.error, [path]);
      }
    }
    log.assertClean();
    assert(log.accepted > 0 && log.refused > 0, "both outcomes exercised");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz cifar100 fine_label_names.txt: every mutation is read exactly or refused naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-fuzz-cifar-names-" });
  try {
    await Deno.writeFile(join(dir, "train.bin"), encodeCifar100(validSet()));
    const path = join(dir, "fine_label_names.txt");
    const names = Array.from({ length: 100 }, (_, i) => `fine_${i}`);
    const valid = new TextEncoder().encode(names.join("\n") + "\n");
    const rng = new Prng(SEED + 1);
    const log = new FuzzLog("cifar100 fine_label_names.txt", SEED + 1);
    for (let c = 0; c < NAME_CASES; c++) {
      let bytes: Uint8Array;
      let description: string;
      const kind = rng.int(4);
      if (kind === 0) {
        const lines = names.slice();
        const i = rng.int(lines.length);
        const op = rng.pick(["drop", "duplicate", "empty", "spaces"] as const);
        if (op === "drop") lines.splice(i, 1);
        else if (op === "duplicate") lines.splice(i, 0, lines[i]);
        else lines[i] = op === "empty" ? "" : "   ";
        bytes = new TextEncoder().encode(lines.join("\n") + "\n");
        description = `${op} line ${i + 1}`;
      } else {
        const m = mutateBytes(valid, rng);
        bytes = m.value;
        description = m.description;
      }
      await Deno.writeFile(path, bytes);
      log.cases++;
      const out = await attempt(() => readCifar100(dir, { split: "train" }));
      if (out.ok) {
        log.accepted++;
        const lines = new TextDecoder().decode(bytes).split(/\r?\n/);
        if (lines.at(-1) === "") lines.pop();
        const got = out.value.fineNames ?? [];
        if (lines.length !== 100 || lines.some((l) => l.trim() === "")) {
          log.fail(c, description, `accepted ${lines.length} lines (some maybe empty)`);
        } else if (got.join("\n") !== lines.join("\n")) {
          log.fail(c, description, "names differ from the file's lines");
        }
      } else {
        log.refusedNaming(c, description, out.error, [path]);
      }
    }
    log.assertClean();
    assert(log.accepted > 0 && log.refused > 0, "both outcomes exercised");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
