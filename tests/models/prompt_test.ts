import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { multiHeadAttention } from "../../lib/models/layers.ts";
import {
  batchwiseIndices,
  cosineSimilarity,
  keyPullLoss,
  prefixAttention,
  selectRows,
  topKIndices,
  uniformVariable,
} from "../../lib/models/prompt.ts";
import { Rng } from "../../lib/random.ts";
import { maxAbsDiff } from "../helpers.ts";

function normals(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

Deno.test("prompt: cosine similarity, top-N and batch-wise choice on hand-made keys", async () => {
  await initBackend("cpu");
  // Keys along the axes and a diagonal; queries of different lengths.
  const keys = tf.tensor2d([[1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 0]]);
  const queries = tf.tensor2d([[5, 0.1, 0], [0, 0, -1], [0.2, 0.3, 0]]);
  const s = cosineSimilarity(queries, keys);
  const v = s.dataSync();
  assertEquals(s.shape, [3, 4]);
  const n0 = Math.hypot(5, 0.1);
  assertAlmostEquals(v[0], 5 / n0, 1e-6);
  assertAlmostEquals(v[3], 5.1 / n0 / Math.SQRT2, 1e-6);
  assertAlmostEquals(v[4 + 2], -1, 1e-6);
  // Query 0 is nearest key 0, then the diagonal; query 1 points away from key 2, so the
  // zero-similarity keys win (ties: lower index); query 2 is nearest the diagonal, then key 1.
  assertEquals([...topKIndices(v, { rows: 3, cols: 4, k: 2 })], [0, 3, 0, 1, 3, 1]);
  assertEquals([...topKIndices(v, { rows: 3, cols: 4, k: 1, columns: 3 })], [0, 0, 1]);
  // A zero query has similarity 0 to every key (no NaN).
  const z = cosineSimilarity(tf.zeros([1, 3]) as tf.Tensor2D, keys);
  assertEquals([...z.dataSync()], [0, 0, 0, 0]);
  // Batch-wise: the 2 most frequent of {0,3},{0,1},{3,1} → counts 0:2, 3:2, 1:2 → ties by index.
  assertEquals([...batchwiseIndices(new Int32Array([0, 3, 0, 1, 3, 1]), { rows: 3, k: 2 })], [
    0,
    1,
    0,
    1,
    0,
    1,
  ]);
  assertEquals([...batchwiseIndices(new Int32Array([2, 3, 3, 1]), { rows: 2, k: 2 })], [
    3,
    1,
    3,
    1,
  ]);
  assertThrows(() => topKIndices(v, { rows: 3, cols: 4, k: 5 }), Error, "k (5)");
  tf.dispose([keys, queries, s, z]);
});

Deno.test("prompt: selectRows picks rows and routes their gradient; keyPullLoss value and gradient", async () => {
  await initBackend("cpu");
  const table = tf.tensor3d([[[1, 2]], [[3, 4]], [[5, 6]]]);
  const sel = selectRows(table, new Int32Array([2, 0, 2]));
  assertEquals(sel.shape, [3, 1, 2]);
  assertEquals([...sel.dataSync()], [5, 6, 1, 2, 5, 6]);
  // d/dtable Σ w ⊙ selectRows(table): row 2 collects two weights, row 1 none.
  const w = tf.tensor3d([[[1, 10]], [[100, 1000]], [[2, 20]]]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(selectRows(t, new Int32Array([2, 0, 2])), w)))(
    table,
  );
  assertEquals([...g.dataSync()], [100, 1000, 0, 0, 3, 30]);
  assertThrows(() => selectRows(table, new Int32Array([3])), Error, "outside 0..2");
  // Pull: (1/B)·Σ_b Σ_j (1 − s[b, i_bj]); gradient −(count)/B on the chosen entries.
  const s = tf.tensor2d([[0.5, 0.25, -1], [1, 0, 0.75]]);
  const idx = new Int32Array([0, 1, 2, 0]);
  const loss = keyPullLoss(s, idx, { k: 2 });
  assertAlmostEquals(loss.dataSync()[0], ((1 - 0.5) + (1 - 0.25) + (1 - 0.75) + (1 - 1)) / 2, 1e-6);
  const gs = tf.grad((x: tf.Tensor) => keyPullLoss(x as tf.Tensor2D, idx, { k: 2 }))(s);
  assertEquals([...gs.dataSync()], [-0.5, -0.5, 0, -0.5, 0, -0.5]);
  const v = uniformVariable([1000], { rng: new Rng(1), low: -1, high: 1, name: "prompt_test/u" });
  const u = v.dataSync();
  assert(
    Math.min(...u) >= -1 && Math.max(...u) < 1 && Math.min(...u) < -0.9 && Math.max(...u) > 0.9,
  );
  tf.dispose([table, sel, w, g, s, loss, gs, v]);
});

/** Plain-JS prefix attention for one sequence: q, k, v [t, d]; prefixes [p, d]. */
function referencePrefixAttention(
  x: { q: Float32Array; k: Float32Array; v: Float32Array; pk: Float32Array; pv: Float32Array },
  o: { t: number; p: number; d: number; heads: number; causal: boolean },
): Float64Array {
  const { t, p, d, heads } = o;
  const dh = d / heads;
  const keys = [...x.pk, ...x.k];
  const vals = [...x.pv, ...x.v];
  const out = new Float64Array(t * d);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < t; i++) {
      const n = o.causal ? p + i + 1 : p + t;
      const s = Array.from({ length: n }, (_, j) => {
        let dot = 0;
        for (let e = 0; e < dh; e++) dot += x.q[i * d + h * dh + e] * keys[j * d + h * dh + e];
        return dot / Math.sqrt(dh);
      });
      const mx = Math.max(...s);
      const ex = s.map((z) => Math.exp(z - mx));
      const z = ex.reduce((a, b) => a + b, 0);
      for (let e = 0; e < dh; e++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += ex[j] / z * vals[j * d + h * dh + e];
        out[i * d + h * dh + e] = acc;
      }
    }
  }
  return out;
}

Deno.test("prompt: prefixAttention equals a plain-JS reference (bidirectional and causal), P = 0 and an unattended prefix equal plain attention", async () => {
  await initBackend("cpu");
  const rng = new Rng(3);
  const [b, t, p, d, heads] = [2, 5, 3, 8, 2];
  const q = normals(rng, b * t * d);
  const k = normals(rng, b * t * d);
  const v = normals(rng, b * t * d);
  const pk = normals(rng, b * p * d);
  const pv = normals(rng, b * p * d);
  const qkv = {
    q: tf.tensor2d(q, [b * t, d]),
    k: tf.tensor2d(k, [b * t, d]),
    v: tf.tensor2d(v, [b * t, d]),
  };
  const prefix = { key: tf.tensor3d(pk, [b, p, d]), value: tf.tensor3d(pv, [b, p, d]) };
  for (const causal of [false, true]) {
    const got = prefixAttention(qkv, prefix, { batch: b, tokens: t, heads, causal });
    const data = got.dataSync();
    for (let i = 0; i < b; i++) {
      const want = referencePrefixAttention({
        q: q.subarray(i * t * d, (i + 1) * t * d),
        k: k.subarray(i * t * d, (i + 1) * t * d),
        v: v.subarray(i * t * d, (i + 1) * t * d),
        pk: pk.subarray(i * p * d, (i + 1) * p * d),
        pv: pv.subarray(i * p * d, (i + 1) * p * d),
      }, { t, p, d, heads, causal });
      const diff = maxAbsDiff(data.subarray(i * t * d, (i + 1) * t * d), want);
      assert(diff < 1e-5, `causal=${causal} sequence ${i}: ${diff}`);
    }
    got.dispose();
  }
  // P = 0: exactly multiHeadAttention.
  const plain = multiHeadAttention(qkv, { batch: b, tokens: t, heads });
  const none = tf.zeros([b, 0, d]) as tf.Tensor3D;
  const p0 = prefixAttention(qkv, { key: none, value: none }, { batch: b, tokens: t, heads });
  assertEquals([...p0.dataSync()], [...plain.dataSync()]);
  // An unattended prefix: all queries positive, prefix keys −1000 → weights exp(−huge) = 0.
  const qPos = tf.abs(qkv.q).add(0.1) as tf.Tensor2D;
  const far = tf.fill([b, p, d], -1000) as tf.Tensor3D;
  const plainPos = multiHeadAttention({ ...qkv, q: qPos }, { batch: b, tokens: t, heads });
  const ignored = prefixAttention({ ...qkv, q: qPos }, { key: far, value: prefix.value }, {
    batch: b,
    tokens: t,
    heads,
  });
  assert(maxAbsDiff(ignored.dataSync(), plainPos.dataSync()) < 1e-6);
  assertThrows(
    () => prefixAttention(qkv, { key: far, value: none }, { batch: b, tokens: t, heads }),
    Error,
    "value prefix",
  );
  tf.dispose([
    ...Object.values(qkv),
    prefix.key,
    prefix.value,
    plain,
    none,
    p0,
    qPos,
    far,
    plainPos,
    ignored,
  ]);
});

Deno.test("prompt: prefixAttention gradient on wasm equals cpu; no tensors leak", async () => {
  const rng = new Rng(4);
  const [b, t, p, d, heads] = [2, 4, 3, 8, 2];
  const data = [normals(rng, b * t * d), normals(rng, b * p * d), normals(rng, b * p * d)];
  const probe = normals(rng, b * t * d);
  const grads: Float32Array[][] = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const before = tf.memory().numTensors;
    const x = tf.tensor2d(data[0], [b * t, d]);
    const pk = tf.tensor3d(data[1], [b, p, d]);
    const pv = tf.tensor3d(data[2], [b, p, d]);
    const w = tf.tensor2d(probe, [b * t, d]);
    const g = tf.grads((xx: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
      tf.sum(tf.mul(
        prefixAttention(
          { q: xx as tf.Tensor2D, k: xx as tf.Tensor2D, v: xx as tf.Tensor2D },
          { key: kk as tf.Tensor3D, value: vv as tf.Tensor3D },
          { batch: b, tokens: t, heads },
        ),
        w,
      ))
    )([x, pk, pv]);
    grads.push(g.map((t) => t.dataSync() as Float32Array));
    tf.dispose([x, pk, pv, w, ...g]);
    assertEquals(tf.memory().numTensors, before);
  }
  for (let i = 0; i < 3; i++) {
    assert(maxAbsDiff(grads[0][i], grads[1][i]) < 1e-4, `gradient ${i}`);
    assert(Math.max(...grads[0][i].map(Math.abs)) > 1e-3, `gradient ${i} is not zero`);
  }
});
