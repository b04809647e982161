/**
 * MD5 (RFC 1321) in plain TypeScript, incremental, for checking downloads
 * against published checksums (WebCrypto has no MD5). Not for security:
 * MD5 is broken for collision resistance; it only detects corrupt or
 * truncated files here.
 *
 * Tested against the RFC's test suite (appendix A.5) and the one-million-"a"
 * vector; hashing runs at a few hundred MB/s.
 *
 * @module
 */

/** Left-rotation amounts: four per round, repeated over the round's 16 steps. */
const SHIFTS = [[7, 12, 17, 22], [5, 9, 14, 20], [4, 11, 16, 23], [6, 10, 15, 21]];
const S = Int32Array.from({ length: 64 }, (_, i) => SHIFTS[i >> 4][i & 3]);

/** K[i] = floor(2³² · |sin(i + 1)|). */
const K = Int32Array.from(
  { length: 64 },
  (_, i) => Math.floor(2 ** 32 * Math.abs(Math.sin(i + 1))),
);

/**
 * An incremental MD5 hash: `update` with any number of chunks, then
 * `digest` (or `hex`) once.
 *
 * @example
 * ```ts
 * import { Md5 } from "./md5.ts";
 * const h = new Md5();
 * h.update(new TextEncoder().encode("message "));
 * h.update(new TextEncoder().encode("digest"));
 * h.hex(); // "f96b697d7cb7938d525a2f31aaf161d0"
 * ```
 */
export class Md5 {
  #state = Int32Array.of(0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476);
  #block = new Uint8Array(64);
  #blockView = new DataView(this.#block.buffer);
  #words = new Int32Array(16);
  #fill = 0;
  #length = 0;
  #done = false;

  /** Feed bytes. Returns `this`. Throws after `digest`. */
  update(bytes: Uint8Array): this {
    if (this.#done) throw new Error("Md5.update: the digest was already taken");
    this.#length += bytes.length;
    let i = 0;
    if (this.#fill > 0) {
      const take = Math.min(64 - this.#fill, bytes.length);
      this.#block.set(bytes.subarray(0, take), this.#fill);
      this.#fill += take;
      i = take;
      if (this.#fill < 64) return this;
      this.#compress(this.#blockView, 0);
      this.#fill = 0;
    }
    if (bytes.length - i >= 64) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (; i + 64 <= bytes.length; i += 64) this.#compress(view, i);
    }
    if (i < bytes.length) {
      this.#block.set(bytes.subarray(i), 0);
      this.#fill = bytes.length - i;
    }
    return this;
  }

  /** The 16-byte digest. The hash cannot be updated afterwards. */
  digest(): Uint8Array {
    if (this.#done) throw new Error("Md5.digest: the digest was already taken");
    const bits = this.#length * 8;
    const pad = new Uint8Array(((this.#fill < 56 ? 56 : 120) - this.#fill) + 8);
    pad[0] = 0x80;
    const v = new DataView(pad.buffer);
    v.setUint32(pad.length - 8, bits >>> 0, true);
    v.setUint32(pad.length - 4, Math.floor(bits / 2 ** 32), true);
    this.update(pad);
    this.#done = true;
    const out = new Uint8Array(16);
    const ov = new DataView(out.buffer);
    for (let k = 0; k < 4; k++) ov.setInt32(k * 4, this.#state[k], true);
    return out;
  }

  /** The digest as 32 lowercase hex digits. */
  hex(): string {
    return Array.from(this.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  #compress(view: DataView, offset: number): void {
    const w = this.#words;
    for (let k = 0; k < 16; k++) w[k] = view.getInt32(offset + 4 * k, true);
    const st = this.#state;
    let a = st[0], b = st[1], c = st[2], d = st[3];
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const t = (a + f + K[i] + w[g]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << S[i]) | (t >>> (32 - S[i])))) | 0;
    }
    st[0] = (st[0] + a) | 0;
    st[1] = (st[1] + b) | 0;
    st[2] = (st[2] + c) | 0;
    st[3] = (st[3] + d) | 0;
  }
}

/**
 * MD5 of bytes or a string (UTF-8), as 32 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { md5Hex } from "./md5.ts";
 * md5Hex("abc"); // "900150983cd24fb0d6963f7d28e17f72"
 * ```
 */
export function md5Hex(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return new Md5().update(bytes).hex();
}

/**
 * MD5 of everything a byte stream yields (consumes the stream).
 *
 * @example
 * ```ts
 * import { md5OfStream } from "./md5.ts";
 * const stream = new Blob(["abc"]).stream();
 * await md5OfStream(stream); // "900150983cd24fb0d6963f7d28e17f72"
 * ```
 */
export async function md5OfStream(stream: ReadableStream<Uint8Array>): Promise<string> {
  const h = new Md5();
  for await (const chunk of stream) h.update(chunk);
  return h.hex();
}

/**
 * MD5 of a file, read in chunks; errors name the file.
 *
 * @example
 * ```ts
 * import { md5OfFile } from "./md5.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * await md5OfFile(path); // "900150983cd24fb0d6963f7d28e17f72"
 * await Deno.remove(path);
 * ```
 */
export async function md5OfFile(path: string): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw new Error(`could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return await md5OfStream(file.readable);
}
