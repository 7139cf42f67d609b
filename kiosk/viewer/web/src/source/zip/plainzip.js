// "Save for your PACS": the DICOM file-set as a plain zip (stored, ZIP64 where needed, UTF-8
// names), written entry by entry to a WritableStream, so only one file is in memory at a time.
import { crc32 } from "./crc32.js";

const utf8 = new TextEncoder();
const LIMIT = 0xffffffff;

function header(size, fields) {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  for (const [at, width, value] of fields) {
    if (width === 2) view.setUint16(at, value, true);
    else if (width === 4) view.setUint32(at, value, true);
    else view.setBigUint64(at, BigInt(value), true);
  }
  return { bytes, view };
}

export class PlainZipWriter {
  /** @param {WritableStreamDefaultWriter} writer */
  constructor(writer) {
    this.writer = writer;
    this.offset = 0;
    this.central = [];
  }

  async _write(bytes) {
    await this.writer.write(bytes);
    this.offset += bytes.length;
  }

  /** Add one file. @param {string} name @param {Uint8Array} data */
  async add(name, data) {
    const nameBytes = utf8.encode(name);
    const crc = crc32(data);
    const big = data.length >= LIMIT || this.offset >= LIMIT;
    // Local header (APPNOTE 4.3.7), ZIP64 sizes in its extra field when needed (4.5.3).
    const extra = big ? header(20, [[0, 2, 1], [2, 2, 16], [4, 8, data.length], [12, 8, data.length]]).bytes : new Uint8Array(0);
    const local = header(30, [[0, 4, 0x04034b50], [4, 2, big ? 45 : 20], [6, 2, 0x0800], [8, 2, 0],
      [10, 2, 0], [12, 2, 0x21], [14, 4, crc], [18, 4, big ? LIMIT : data.length],
      [22, 4, big ? LIMIT : data.length], [26, 2, nameBytes.length], [28, 2, extra.length]]).bytes;
    this.central.push({ nameBytes, crc, size: data.length, offset: this.offset });
    await this._write(local);
    await this._write(nameBytes);
    if (extra.length) await this._write(extra);
    await this._write(data);
  }

  /** The central directory and end records; closes the stream. */
  async close() {
    const start = this.offset;
    for (const e of this.central) {
      const z = [];
      if (e.size >= LIMIT) z.push(e.size, e.size);
      if (e.offset >= LIMIT) z.push(e.offset);
      const extra = z.length ? header(4 + 8 * z.length, [[0, 2, 1], [2, 2, 8 * z.length],
        ...z.map((v, i) => [4 + 8 * i, 8, v])]).bytes : new Uint8Array(0);
      const c = header(46, [[0, 4, 0x02014b50], [4, 2, 0x033f], [6, 2, z.length ? 45 : 20],
        [8, 2, 0x0800], [10, 2, 0], [12, 2, 0], [14, 2, 0x21], [16, 4, e.crc],
        [20, 4, e.size >= LIMIT ? LIMIT : e.size], [24, 4, e.size >= LIMIT ? LIMIT : e.size],
        [28, 2, e.nameBytes.length], [30, 2, extra.length], [32, 2, 0], [34, 2, 0], [36, 2, 0],
        [38, 4, 0o100644 << 16], [42, 4, e.offset >= LIMIT ? LIMIT : e.offset]]).bytes;
      await this._write(c);
      await this._write(e.nameBytes);
      if (extra.length) await this._write(extra);
    }
    const size = this.offset - start;
    const count = this.central.length;
    if (count >= 0xffff || start >= LIMIT || size >= LIMIT) {
      const z64 = this.offset;
      await this._write(header(56, [[0, 4, 0x06064b50], [4, 8, 44], [12, 2, 45], [14, 2, 45],
        [16, 4, 0], [20, 4, 0], [24, 8, count], [32, 8, count], [40, 8, size], [48, 8, start]]).bytes);
      await this._write(header(20, [[0, 4, 0x07064b50], [4, 4, 0], [8, 8, z64], [16, 4, 1]]).bytes);
    }
    await this._write(header(22, [[0, 4, 0x06054b50], [4, 2, 0], [6, 2, 0],
      [8, 2, Math.min(count, 0xffff)], [10, 2, Math.min(count, 0xffff)],
      [12, 4, Math.min(size, LIMIT)], [16, 4, Math.min(start, LIMIT)], [20, 2, 0]]).bytes);
    await this.writer.close();
  }
}
