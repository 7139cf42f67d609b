// Entries of the stick's zip, in a worker: WinZip AE-2 keys by PBKDF2-HMAC-SHA1 (WebCrypto),
// the password verifier, the HMAC-SHA1 of the ciphertext (WebCrypto), AES-256 in WinZip's
// little-endian counter mode (our WebAssembly: WebCrypto's AES-CTR counts big-endian), and the
// SHA-256 of the plaintext for the manifest. Several of these run at once (pool.js).
//
// A job is one Blob holding one or more consecutive entries, each from its local header: the
// background check reads a few MB at a time, since every Blob read is a round trip to the
// browser process and per-entry reads cost more CPU than the hashing.
import aesWasm from "wasm:aes";

const subtle = crypto.subtle;
const wasm = new WebAssembly.Instance(new WebAssembly.Module(aesWasm), {
  env: { abort() { throw new Error("aes.wasm aborted"); } },
}).exports;
const SIG_LOCAL = 0x04034b50;
let baseKey = null;
let baseFor = null;

async function passwordKey(passphrase) {
  if (baseFor !== passphrase) {
    baseKey = await subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveBits"]);
    baseFor = passphrase;
  }
  return baseKey;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * One entry's stored bytes (`stored`: from the salt for AES) to its plaintext checks.
 * WebCrypto copies its input when called, so the HMAC runs over the ciphertext in the
 * WebAssembly memory before it is decrypted there in place, and the SHA-256 over the result.
 */
async function entry(stored, { passphrase, saltLen, encrypted, wantData }) {
  if (!encrypted) {
    const sha256 = hex(await subtle.digest("SHA-256", stored));
    const whole = stored.byteOffset === 0 && stored.length === stored.buffer.byteLength;
    const data = wantData ? (whole ? stored.buffer : stored.slice().buffer) : undefined;
    return { pvOk: true, macOk: true, sha256, size: stored.length, data };
  }
  const keyLen = saltLen * 2; // AES-128/192/256: salt 8/12/16 bytes, key 16/24/32
  const salt = stored.subarray(0, saltLen);
  const verifier = stored.subarray(saltLen, saltLen + 2);
  const bits = new Uint8Array(await subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-1", salt, iterations: 1000 }, await passwordKey(passphrase),
    (2 * keyLen + 2) * 8));
  if (!equal(bits.subarray(2 * keyLen), verifier)) return { pvOk: false };
  if (keyLen !== 32) return { pvOk: true, unsupported: true };
  const ct = stored.subarray(saltLen + 2, stored.length - 10);
  const mac = stored.subarray(stored.length - 10);
  const macKey = await subtle.importKey("raw", bits.subarray(32, 64), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const ptr = wasm.reserve(ct.length); // may grow the memory: views after it
  new Uint8Array(wasm.memory.buffer, wasm.keyPtr(), 32).set(bits.subarray(0, 32));
  wasm.setKey();
  const work = new Uint8Array(wasm.memory.buffer, ptr, ct.length);
  work.set(ct);
  const tag = subtle.sign("HMAC", macKey, work);
  wasm.ctr(ptr, ct.length, 1n);
  const digest = subtle.digest("SHA-256", work);
  const data = wantData ? work.slice().buffer : undefined;
  const macOk = equal(new Uint8Array(await tag).subarray(0, 10), mac);
  return { pvOk: true, macOk, sha256: hex(await digest), size: ct.length, data };
}

/** The entries of one job: each item's local header at `at` in the blob, then its data. */
async function entries({ blob, passphrase, wantData, items }) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const results = [];
  for (const item of items) {
    if (item.at + 30 > bytes.length || view.getUint32(item.at, true) !== SIG_LOCAL) {
      results.push({ badHeader: true });
      continue;
    }
    const start = item.at + 30 + view.getUint16(item.at + 26, true) + view.getUint16(item.at + 28, true);
    if (start + item.length > bytes.length) {
      results.push({ badHeader: true });
      continue;
    }
    results.push(await entry(bytes.subarray(start, start + item.length),
      { passphrase, saltLen: item.saltLen, encrypted: item.encrypted, wantData }));
  }
  return results;
}

self.onmessage = async (event) => {
  const { id, job } = event.data;
  try {
    const results = job.items ? await entries(job) : [await entry(new Uint8Array(await job.blob.arrayBuffer()), job)];
    const transfer = results.map((r) => r.data).filter(Boolean);
    self.postMessage({ id, result: job.items ? results : results[0] }, transfer);
  } catch (e) {
    self.postMessage({ id, error: String(e?.message ?? e) });
  }
};
