import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadWeights,
  saveWeights,
} from "../../lib/models/safetensors.ts";

/** A file from a header object and raw data bytes, exactly as the format lays them out. */
function handWritten(header: unknown, data: number[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32le(values: number[]): number[] {
  const b = new Uint8Array(values.length * 4);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setFloat32(i * 4, x, true));
  return [...b];
}

Deno.test("safetensors: round trip preserves names, order, shapes, values and metadata", () => {
  const tensors = new Map([
    ["z.last", { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-8, -7e5]) }],
    ["a.first", { shape: [], data: Float32Array.from([42]) }],
    ["empty", { shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const bytes = encodeSafetensors(tensors, { format: "pt", note: "ü ok" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + n) % 8, 0); // header padded to 8 bytes
  assertEquals(bytes.length, 8 + n + 4 * 7);
  const back = decodeSafetensors(bytes, { source: "mem" });
  assertEquals([...back.tensors.keys()], ["z.last", "a.first", "empty"]);
  for (const [name, t] of tensors) {
    assertEquals(back.tensors.get(name)!.shape, t.shape);
    assertEquals(Array.from(back.tensors.get(name)!.data), Array.from(t.data));
  }
  assertEquals(back.metadata, { format: "pt", note: "ü ok" });
  // Re-encoding the decoded tensors gives the same bytes.
  assertEquals(encodeSafetensors(back.tensors, back.metadata), bytes);
});

Deno.test("safetensors: a hand-written file decodes (F32, F16, BF16, F64, metadata)", () => {
  const data = [
    ...f32le([1.5, -2]), // a: F32 [2]
    0x00,
    0x3c,
    0x00,
    0xc0,
    0xff,
    0x7b,
    0x01,
    0x00, // h: F16 1, -2, 65504, 2^-24
    0x80,
    0x3f,
    0x40,
    0xc0, // b: BF16 1, -3
    ...new Uint8Array(Float64Array.from([0.1]).buffer), // d: F64 0.1
  ];
  const bytes = handWritten({
    __metadata__: { format: "pt" },
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    h: { dtype: "F16", shape: [2, 2], data_offsets: [8, 16] },
    b: { dtype: "BF16", shape: [2], data_offsets: [16, 20] },
    d: { dtype: "F64", shape: [1], data_offsets: [20, 28] },
  }, data);
  const { tensors, metadata } = decodeSafetensors(bytes);
  assertEquals(metadata, { format: "pt" });
  assertEquals(Array.from(tensors.get("a")!.data), [1.5, -2]);
  assertEquals(tensors.get("h")!.shape, [2, 2]);
  assertEquals(Array.from(tensors.get("h")!.data), [1, -2, 65504, 2 ** -24]);
  assertEquals(Array.from(tensors.get("b")!.data), [1, -3]);
  assertEquals(tensors.get("d")!.data[0], Math.fround(0.1));
});

Deno.test("safetensors: corrupt files give errors naming the file, the tensor and the expectation", () => {
  const ok = { dtype: "F32", shape: [2], data_offsets: [0, 8] };
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(5), "file is 5 bytes, shorter than the 8-byte header length"],
    [
      (() => {
        const b = handWritten({ a: ok }, f32le([1, 2]));
        new DataView(b.buffer).setBigUint64(0, 1000n, true);
        return b;
      })(),
      "header length 1000 goes beyond the end of the file",
    ],
    [
      handWritten({ a: { ...ok, data_offsets: [0, 16] } }, f32le([1, 2])),
      `tensor "a": data_offsets [0, 16] out of range`,
    ],
    [
      handWritten({ a: { ...ok, dtype: "I64" } }, f32le([1, 2])),
      `tensor "a": unsupported dtype "I64"`,
    ],
    [
      handWritten({ a: { ...ok, shape: [3] } }, f32le([1, 2])),
      `tensor "a": size mismatch: shape [3] of F32 needs 12 bytes`,
    ],
    [
      handWritten({ a: { ...ok, data_offsets: [8, 0] } }, f32le([1, 2])),
      `tensor "a": data_offsets [8, 0] out of range`,
    ],
    [
      handWritten({ __metadata__: { n: 1 }, a: ok }, f32le([1, 2])),
      `__metadata__ "n" must be a string`,
    ],
    [handWritten([1, 2], []), "header is not a JSON object"],
  ];
  for (const [bytes, expected] of cases) {
    assertThrows(
      () => decodeSafetensors(bytes, { source: "bad.safetensors" }),
      Error,
      `safetensors bad.safetensors: ${expected}`,
    );
  }
  const broken = handWritten({ a: ok }, f32le([1, 2]));
  broken[8] = 0x7b + 1; // '{' → '|'
  assertThrows(
    () => decodeSafetensors(broken, { source: "x" }),
    Error,
    "header is not valid UTF-8 JSON",
  );
  assertThrows(
    () => encodeSafetensors({ w: { shape: [3], data: new Float32Array(2) } }),
    Error,
    `tensor "w" has 2 values but shape [3] needs 3`,
  );
});

Deno.test("saveWeights / loadWeights: atomic file round trip, tensors accepted, errors name the file", async () => {
  await initBackend("cpu");
  const dir = await Deno.makeTempDir({ prefix: "treelora-st-" });
  try {
    const path = `${dir}/sub/w.safetensors`;
    const v = tf.variable(tf.tensor2d([[1, 2], [3, 4]]));
    await saveWeights(
      path,
      new Map<string, tf.Tensor | { shape: number[]; data: Float32Array }>([
        ["v", v],
        ["plain", { shape: [1], data: Float32Array.from([5]) }],
      ]),
      { metadata: { report: JSON.stringify({ acc: 1 }) } },
    );
    v.dispose();
    const names = [];
    for await (const e of Deno.readDir(`${dir}/sub`)) names.push(e.name);
    assertEquals(names, ["w.safetensors"]); // no temp file left
    const loaded = await loadWeights(path);
    assertEquals(loaded.tensors.get("v")!.shape, [2, 2]);
    assertEquals(Array.from(loaded.tensors.get("v")!.data), [1, 2, 3, 4]);
    assertEquals(JSON.parse(loaded.metadata.report), { acc: 1 });
    await Deno.writeFile(`${dir}/cut.safetensors`, (await Deno.readFile(path)).subarray(0, 40));
    await assertRejects(
      () => loadWeights(`${dir}/cut.safetensors`),
      Error,
      `safetensors ${dir}/cut.safetensors:`,
    );
    await assertRejects(
      () => loadWeights(`${dir}/none.safetensors`),
      Error,
      `could not read ${dir}/none.safetensors`,
    );
    assert(true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: two tensors whose byte ranges overlap are refused, naming both", () => {
  const bytes = handWritten({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  }, f32le([1, 2, 3]));
  assertThrows(
    () => decodeSafetensors(bytes, { source: "x.safetensors" }),
    Error,
    `safetensors x.safetensors: tensors "a" [0, 8] and "b" [4, 12] overlap in the data section`,
  );
  // Adjacent ranges are fine.
  const fine = handWritten({
    a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  }, f32le([1, 2, 3]));
  assertEquals(Array.from(decodeSafetensors(fine).tensors.get("b")!.data), [2, 3]);
});
