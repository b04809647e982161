/**
 * The dynamic symbols an ELF shared object exports, read from the file
 * without loading it. `--blas PATH` uses this to refuse, before `dlopen`
 * runs any of the library's code, a file that is not a BLAS library (one
 * that does not export `cblas_sgemm`).
 *
 * Only what the check needs is read: the ELF header, the section headers,
 * the `.dynsym` section and the string table it links to. ELF32 and ELF64,
 * little- and big-endian, are understood; anything else is an error that
 * names the file and what was expected.
 *
 * @module
 */

/** What {@link elfExports} found. */
export interface ElfExports {
  /** 32 or 64. */
  bits: 32 | 64;
  /** Names of the defined (not undefined) symbols of `.dynsym`. */
  names: Set<string>;
}

const SHT_DYNSYM = 11;
const SHN_UNDEF = 0;
const MAX_SECTIONS = 65535;
const MAX_SECTION_BYTES = 256 * 1024 * 1024;

/**
 * The defined dynamic symbols of the ELF file at `path` (read synchronously: the check sits
 * in front of `Deno.dlopen`, which is synchronous too).
 *
 * Throws, naming the file, when it is not an ELF file, is truncated, or its
 * section headers point outside it.
 *
 * @example
 * ```ts ignore
 * import { elfExports } from "./elf_symbols.ts";
 * const { names } = elfExports("/usr/lib/x86_64-linux-gnu/libopenblas.so.0");
 * names.has("cblas_sgemm"); // true
 * ```
 */
export function elfExports(path: string): ElfExports {
  const file = Deno.openSync(path, { read: true });
  try {
    const size = file.statSync().size;
    const read = (offset: number, length: number, what: string): DataView => {
      if (offset < 0 || length < 0 || offset + length > size || length > MAX_SECTION_BYTES) {
        throw new Error(
          `${path}: ${what} (bytes ${offset}–${offset + length}) lies outside the file ` +
            `(${size} bytes): not a valid ELF shared object`,
        );
      }
      const buf = new Uint8Array(length);
      file.seekSync(offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < length) {
        const n = file.readSync(buf.subarray(got));
        if (n === null) throw new Error(`${path}: unexpected end of file reading ${what}`);
        got += n;
      }
      return new DataView(buf.buffer);
    };
    const ident = read(0, Math.min(size, 64), "the ELF header");
    if (
      ident.byteLength < 52 || ident.getUint32(0) !== 0x7f454c46 // "\x7fELF"
    ) {
      throw new Error(`${path} is not an ELF shared object (no \\x7fELF header)`);
    }
    const cls = ident.getUint8(4);
    const data = ident.getUint8(5);
    if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) {
      throw new Error(`${path}: unknown ELF class ${cls} or byte order ${data}`);
    }
    const bits: 32 | 64 = cls === 2 ? 64 : 32;
    const le = data === 1;
    if (bits === 64 && ident.byteLength < 64) throw new Error(`${path}: truncated ELF header`);
    const word = (v: DataView, at: number) =>
      bits === 64 ? Number(v.getBigUint64(at, le)) : v.getUint32(at, le);
    const shoff = word(ident, bits === 64 ? 0x28 : 0x20);
    const shentsize = ident.getUint16(bits === 64 ? 0x3a : 0x2e, le);
    const shnum = ident.getUint16(bits === 64 ? 0x3c : 0x30, le);
    const minEntry = bits === 64 ? 64 : 40;
    if (shnum === 0 || shnum > MAX_SECTIONS || shentsize < minEntry) {
      throw new Error(
        `${path}: ELF header gives ${shnum} section headers of ${shentsize} bytes ` +
          `(expected 1–${MAX_SECTIONS} of at least ${minEntry} bytes)`,
      );
    }
    const headers = read(shoff, shnum * shentsize, "the section header table");
    const section = (i: number) => {
      const at = i * shentsize;
      return {
        type: headers.getUint32(at + 4, le),
        offset: word(headers, at + (bits === 64 ? 0x18 : 0x10)),
        size: word(headers, at + (bits === 64 ? 0x20 : 0x14)),
        link: headers.getUint32(at + (bits === 64 ? 0x28 : 0x18), le),
        entsize: word(headers, at + (bits === 64 ? 0x38 : 0x24)),
      };
    };
    const names = new Set<string>();
    const decoder = new TextDecoder();
    for (let i = 0; i < shnum; i++) {
      const sym = section(i);
      if (sym.type !== SHT_DYNSYM) continue;
      if (sym.link >= shnum) throw new Error(`${path}: .dynsym links to section ${sym.link}`);
      const entry = bits === 64 ? 24 : 16;
      if (sym.entsize !== entry) {
        throw new Error(`${path}: .dynsym entries of ${sym.entsize} bytes (expected ${entry})`);
      }
      const strtab = section(sym.link);
      const syms = read(sym.offset, sym.size, ".dynsym");
      const strs = new Uint8Array((read(strtab.offset, strtab.size, ".dynstr")).buffer);
      for (let at = 0; at + entry <= sym.size; at += entry) {
        const nameOffset = syms.getUint32(at, le);
        const shndx = syms.getUint16(at + (bits === 64 ? 6 : 14), le);
        if (shndx === SHN_UNDEF || nameOffset === 0 || nameOffset >= strs.length) continue;
        let end = nameOffset;
        while (end < strs.length && strs[end] !== 0) end++;
        names.add(decoder.decode(strs.subarray(nameOffset, end)));
      }
    }
    return { bits, names };
  } finally {
    file.close();
  }
}
