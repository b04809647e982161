/**
 * A small tar reader and writer (POSIX ustar, with GNU long names and pax
 * `path`/`size` records on reading), enough to unpack data-set archives
 * such as `cifar-100-binary.tar.gz` (after `DecompressionStream("gzip")`).
 *
 * An archive is a sequence of 512-byte header blocks, each followed by the
 * entry's data padded to a multiple of 512 bytes, and ends with two zero
 * blocks. Header fields used: name (0–99), mode (100), size (124, octal or
 * GNU base-256), mtime (136), checksum (148), type flag (156), ustar magic
 * (257) and prefix (345–499). Every header's checksum is verified.
 *
 * {@link readTar} streams: entries the caller does not want are skipped
 * without being held in memory.
 *
 * @module
 */

const BLOCK = 512;

/** One header of a tar archive. */
export interface TarHeader {
  /** Path inside the archive (prefix/name, or the GNU/pax long name). */
  name: string;
  /** Data bytes. */
  size: number;
  /** `file`, `directory`, or `other` (links, devices, …). */
  type: "file" | "directory" | "other";
  /** The raw type flag ("0", "5", …; old archives' NUL flag reads as "0"). */
  typeflag: string;
  /** Permission bits. */
  mode: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
}

/** A tar entry with its data. */
export interface TarFile extends TarHeader {
  /** The entry's bytes. */
  data: Uint8Array;
}

/** Reads exact byte counts from a byte stream. */
class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #pos = 0;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #more(): Promise<boolean> {
    const { value, done } = await this.#reader.read();
    if (done) return false;
    this.#chunk = value;
    this.#pos = 0;
    return true;
  }

  /**
   * Exactly n bytes, or fewer at the end of the stream. With `copy` false the
   * result may be a view of the stream's chunk (valid until the next read).
   */
  async read(n: number, copy = false): Promise<Uint8Array> {
    if (this.#chunk.length - this.#pos >= n) {
      const view = this.#chunk.subarray(this.#pos, this.#pos + n);
      const out = copy ? view.slice() : view;
      this.#pos += n;
      this.offset += n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.#pos >= this.#chunk.length && !(await this.#more())) break;
      const take = Math.min(n - filled, this.#chunk.length - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + take), filled);
      this.#pos += take;
      filled += take;
    }
    this.offset += filled;
    return filled === n ? out : out.subarray(0, filled);
  }

  /** Skip n bytes; returns the number skipped (fewer at the end of the stream). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.#pos >= this.#chunk.length && !(await this.#more())) break;
      const take = Math.min(left, this.#chunk.length - this.#pos);
      this.#pos += take;
      left -= take;
    }
    this.offset += n - left;
    return n - left;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

const decoder = new TextDecoder();

function text(block: Uint8Array, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

function octal(block: Uint8Array, start: number, length: number, what: string): number {
  const field = block.subarray(start, start + length);
  if (field[0] & 0x80) {
    // GNU base-256: big-endian two's complement in the remaining bits.
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    return v;
  }
  const s = text(block, start, length).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`${what}: "${s}" is not an octal number`);
  return parseInt(s, 8);
}

function checksumOf(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum;
}

function parsePax(data: Uint8Array, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space < 0) throw new Error(`${where}: malformed pax record`);
    const len = Number(decoder.decode(data.subarray(i, space)));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) {
      throw new Error(`${where}: malformed pax record length`);
    }
    const record = decoder.decode(data.subarray(space + 1, i + len - 1));
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * Read a tar archive from a byte stream, yielding the entries `want` accepts
 * (default: every regular file) with their data. Other entries are skipped
 * without buffering. `source` names the archive in errors (bad checksum,
 * truncated data).
 *
 * @example
 * ```ts
 * import { encodeTar, readTar } from "./tar.ts";
 * const bytes = encodeTar([{ name: "a/b.txt", data: new TextEncoder().encode("hi") }]);
 * for await (const f of readTar(new Blob([bytes]).stream(), { source: "example.tar" })) {
 *   console.log(f.name, f.size); // "a/b.txt" 2
 * }
 * ```
 */
export async function* readTar(
  stream: ReadableStream<Uint8Array>,
  options: { source: string; want?: (header: TarHeader) => boolean },
): AsyncGenerator<TarFile> {
  const source = options.source;
  const want = options.want ?? ((h: TarHeader) => h.type === "file");
  const r = new ByteReader(stream);
  let longName: string | undefined;
  let pax: Record<string, string> = {};
  let finished = false;
  try {
    while (true) {
      const at = r.offset;
      const block = await r.read(BLOCK);
      if (block.length === 0) break; // end of stream without the end-of-archive blocks
      if (block.length < BLOCK) {
        throw new Error(`${source}: truncated header at byte ${at} (${block.length} of 512 bytes)`);
      }
      if (block.every((b) => b === 0)) break;
      const where = `${source}: header at byte ${at}`;
      const stored = octal(block, 148, 8, `${where}, checksum field`);
      if (stored !== checksumOf(block)) {
        throw new Error(
          `${where}: checksum ${stored} does not match the header's ${checksumOf(block)} ` +
            `(not a tar archive, or corrupt)`,
        );
      }
      const typeflag = String.fromCharCode(block[156] || 0x30);
      let size = octal(block, 124, 12, `${where}, size field`);
      const magic = text(block, 257, 6);
      const prefix = magic.startsWith("ustar") ? text(block, 345, 155) : "";
      let name = prefix ? `${prefix}/${text(block, 0, 100)}` : text(block, 0, 100);
      if (pax.size !== undefined) size = Number(pax.size);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (typeflag === "L" || typeflag === "x" || typeflag === "g") {
        const data = await r.read(size);
        if (data.length < size) throw new Error(`${where}: truncated (${typeflag} record)`);
        await r.skip(padded - size);
        if (typeflag === "L") longName = decoder.decode(data).replace(/\0+$/, "");
        else if (typeflag === "x") pax = parsePax(data, where);
        continue;
      }
      if (longName !== undefined) name = longName;
      if (pax.path !== undefined) name = pax.path;
      longName = undefined;
      pax = {};
      const header: TarHeader = {
        name,
        size,
        type: typeflag === "0" || typeflag === "7"
          ? "file"
          : typeflag === "5"
          ? "directory"
          : "other",
        typeflag,
        mode: octal(block, 100, 8, `${where}, mode field`),
        mtime: octal(block, 136, 12, `${where}, mtime field`),
      };
      if (want(header)) {
        const data = await r.read(size, true);
        if (data.length < size) {
          throw new Error(
            `${source}: entry "${name}" is truncated: ${data.length} of ${size} bytes`,
          );
        }
        await r.skip(padded - size);
        yield { ...header, data };
      } else {
        const skipped = await r.skip(padded);
        if (skipped < size) {
          throw new Error(`${source}: entry "${name}" is truncated: ${skipped} of ${size} bytes`);
        }
      }
    }
    finished = true;
  } finally {
    if (!finished) await r.cancel();
  }
}

/** A file to put into an archive. */
export interface TarInput {
  /** Path inside the archive (UTF-8, at most 255 bytes; split into prefix/name when over 100). */
  name: string;
  /** Contents. */
  data: Uint8Array;
  /** Permission bits (default 0o644). */
  mode?: number;
  /** Modification time in seconds (default 0). */
  mtime?: number;
}

function writeText(block: Uint8Array, start: number, length: number, s: string): void {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length > length) throw new Error(`tar: "${s}" does not fit in ${length} bytes`);
  block.set(bytes, start);
}

function writeOctal(block: Uint8Array, start: number, length: number, v: number): void {
  const s = v.toString(8).padStart(length - 1, "0");
  if (s.length > length - 1) throw new Error(`tar: ${v} does not fit in a ${length}-byte field`);
  writeText(block, start, length, s);
}

/**
 * Encode files as a ustar archive (regular files only; parent directories
 * are implied by the paths, as most archivers accept).
 *
 * @example
 * ```ts
 * import { encodeTar } from "./tar.ts";
 * const bytes = encodeTar([{ name: "hello.txt", data: new TextEncoder().encode("hello\n") }]);
 * console.log(bytes.length); // 2048: header, one data block, two end blocks
 * ```
 */
export function encodeTar(files: readonly TarInput[]): Uint8Array<ArrayBuffer> {
  let total = 2 * BLOCK;
  for (const f of files) total += BLOCK + Math.ceil(f.data.length / BLOCK) * BLOCK;
  const out = new Uint8Array(total);
  let pos = 0;
  for (const f of files) {
    const block = out.subarray(pos, pos + BLOCK);
    const nameBytes = new TextEncoder().encode(f.name);
    let name = f.name;
    let prefix = "";
    if (nameBytes.length > 100) {
      const cut = f.name.lastIndexOf("/", f.name.length - 1);
      prefix = f.name.slice(0, cut);
      name = f.name.slice(cut + 1);
      if (cut <= 0 || new TextEncoder().encode(name).length > 100) {
        throw new Error(`tar: the path "${f.name}" is too long for a ustar header`);
      }
    }
    writeText(block, 0, 100, name);
    writeOctal(block, 100, 8, f.mode ?? 0o644);
    writeOctal(block, 108, 8, 0);
    writeOctal(block, 116, 8, 0);
    writeOctal(block, 124, 12, f.data.length);
    writeOctal(block, 136, 12, f.mtime ?? 0);
    block[156] = 0x30; // "0": regular file
    writeText(block, 257, 6, "ustar");
    writeText(block, 263, 2, "00");
    writeText(block, 345, 155, prefix);
    const sum = checksumOf(block);
    writeText(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    pos += BLOCK;
    out.set(f.data, pos);
    pos += Math.ceil(f.data.length / BLOCK) * BLOCK;
  }
  return out;
}
