// The zip's end records and central directory (PKWARE APPNOTE 6.3: 4.3.12 central header,
// 4.3.14-4.3.16 ZIP64 end record, locator and end of central directory, 4.5.3 ZIP64 extra
// field), and the WinZip AES extra field (AE-1/AE-2 §II.4). Only what reading needs.

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
export const AES_METHOD = 99;
export const STORED = 0;
const SALT = { 1: 8, 2: 12, 3: 16 };
export const PV_LEN = 2;
export const MAC_LEN = 10;

/** Not a zip we can read: `missingEnd` when its end records are not there at all. */
export class ZipFormatError extends Error {
  constructor(message, { missingEnd = false } = {}) {
    super(message);
    this.missingEnd = missingEnd;
  }
}

function u64(view, at) {
  const value = view.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError("a ZIP64 value is too large");
  return Number(value);
}

const utf8 = new TextDecoder("utf-8");
const latin1 = new TextDecoder("latin1");

function extraFields(bytes) {
  const fields = new Map();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + 4 <= bytes.length;) {
    const id = view.getUint16(at, true);
    const len = view.getUint16(at + 2, true);
    fields.set(id, bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return fields;
}

/**
 * Every entry of the archive, in central-directory order.
 * @param {import("./volumes.js").Volumes} volumes
 * @returns {Promise<Array<{name, flags, method, size, packed, localOffset, aes}>>}
 */
export async function readCentralDirectory(volumes) {
  const tailLen = Math.min(volumes.size, EOCD_SIZE + MAX_COMMENT + 20);
  if (tailLen < EOCD_SIZE) throw new ZipFormatError("too short to be a zip", { missingEnd: true });
  const tailStart = volumes.size - tailLen;
  const tail = await volumes.read(tailStart, tailLen);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let at = tailLen - EOCD_SIZE; at >= 0; at--) {
    if (tv.getUint32(at, true) === SIG_EOCD) { eocd = at; break; }
  }
  if (eocd < 0) throw new ZipFormatError("no end of central directory", { missingEnd: true });
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== SIG_ZIP64_LOCATOR) throw new ZipFormatError("the ZIP64 locator is missing");
    const z64At = u64(tv, loc + 8);
    const z64 = new DataView((await volumes.read(z64At, 56)).buffer);
    if (z64.getUint32(0, true) !== SIG_ZIP64_EOCD) throw new ZipFormatError("the ZIP64 end record is missing");
    count = u64(z64, 32);
    cdSize = u64(z64, 40);
    cdOffset = u64(z64, 48);
  }
  if (cdOffset + cdSize > volumes.size) throw new ZipFormatError("the central directory is past the end (a part may be missing)", { missingEnd: true });
  const cd = await volumes.read(cdOffset, cdSize);
  const view = new DataView(cd.buffer);
  const entries = [];
  for (let at = 0, i = 0; i < count; i++) {
    if (at + 46 > cd.length || view.getUint32(at, true) !== SIG_CENTRAL) throw new ZipFormatError("the central directory is damaged");
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    let packed = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    let localOffset = view.getUint32(at + 42, true);
    const nameBytes = cd.subarray(at + 46, at + 46 + nameLen);
    const extra = extraFields(cd.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen));
    const z64 = extra.get(0x0001);
    if (z64) {
      const zv = new DataView(z64.buffer, z64.byteOffset, z64.byteLength);
      let p = 0;
      if (size === 0xffffffff) { size = u64(zv, p); p += 8; }
      if (packed === 0xffffffff) { packed = u64(zv, p); p += 8; }
      if (localOffset === 0xffffffff) { localOffset = u64(zv, p); p += 8; }
    }
    let aes = null;
    const ae = extra.get(0x9901);
    if (ae && ae.length >= 7) {
      const av = new DataView(ae.buffer, ae.byteOffset, ae.byteLength);
      aes = { version: av.getUint16(0, true), strength: ae[4], method: av.getUint16(5, true) };
    }
    const name = (flags & 0x0800 ? utf8 : latin1).decode(nameBytes);
    entries.push({ name, flags, method, crc, size, packed, localOffset, aes });
    at += 46 + nameLen + extraLen + commentLen;
  }
  // Where each entry's bytes end: the next entry's local header, or the central directory
  // (a read of one entry takes its local header, data and any data descriptor in one slice).
  const byOffset = [...entries].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 0, j = 0; i < byOffset.length; i++) {
    while (j < byOffset.length && byOffset[j].localOffset <= byOffset[i].localOffset) j++;
    byOffset[i].end = Math.min(j < byOffset.length ? byOffset[j].localOffset : cdOffset, volumes.size);
  }
  return entries;
}

/**
 * What a worker needs to read an entry from its local header: {saltLen, length} where length
 * is the stored data's (salt, verifier, ciphertext and MAC for AES).
 */
export function entryPlan(entry) {
  if (entry.method === AES_METHOD) {
    if (!entry.aes || !(entry.aes.strength in SALT) || entry.aes.method !== STORED) {
      throw new ZipFormatError(`${entry.name} is not a stored WinZip AES entry`);
    }
    const saltLen = SALT[entry.aes.strength];
    if (entry.packed - saltLen - PV_LEN - MAC_LEN !== entry.size) throw new ZipFormatError(`${entry.name} has inconsistent sizes`);
    if (entry.end - entry.localOffset < 30 + entry.packed) throw new ZipFormatError(`${entry.name} overlaps the next entry`);
    return { saltLen, length: entry.packed, encrypted: true };
  }
  if (entry.method !== STORED) throw new ZipFormatError(`${entry.name} is compressed (method ${entry.method})`);
  if (entry.end - entry.localOffset < 30 + entry.size) throw new ZipFormatError(`${entry.name} overlaps the next entry`);
  return { saltLen: 0, length: entry.size, encrypted: false };
}
