// One entry of the stick's zip, in a worker: WinZip AE-2 keys by PBKDF2-HMAC-SHA1 (WebCrypto),
// the password verifier, the HMAC-SHA1 of the ciphertext (WebCrypto), AES-256 in WinZip's
// little-endian counter mode (our WebAssembly: WebCrypto's AES-CTR counts big-endian), and the
// SHA-256 of the plaintext for the manifest. Several of these run at once (pool.js).
import aesWasm from "wasm:aes";

const subtle = crypto.subtle;
const wasm = new WebAssembly.Instance(new WebAssembly.Module(aesWasm), {
  env: { abort() { throw new Error("aes.wasm aborted"); } },
}).exports;
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

/** Decrypt `ct` in place with AES-256 key `key` (WinZip CTR from block 1). */
function decrypt(key, ct) {
  const ptr = wasm.reserve(ct.length);
  new Uint8Array(wasm.memory.buffer, wasm.keyPtr(), 32).set(key);
  wasm.setKey();
  const mem = new Uint8Array(wasm.memory.buffer, ptr, ct.length);
  mem.set(ct);
  wasm.ctr(ptr, ct.length, 1n);
  ct.set(new Uint8Array(wasm.memory.buffer, ptr, ct.length));
}

async function entry({ blob, passphrase, saltLen, encrypted, wantData }) {
  const stored = new Uint8Array(await blob.arrayBuffer());
  let plain = stored;
  let macOk = true;
  if (encrypted) {
    const keyLen = saltLen * 2; // AES-128/192/256: salt 8/12/16 bytes, key 16/24/32
    const salt = stored.subarray(0, saltLen);
    const verifier = stored.subarray(saltLen, saltLen + 2);
    const bits = new Uint8Array(await subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-1", salt, iterations: 1000 }, await passwordKey(passphrase),
      (2 * keyLen + 2) * 8));
    if (!equal(bits.subarray(2 * keyLen), verifier)) return { pvOk: false };
    if (keyLen !== 32) return { pvOk: true, unsupported: true };
    plain = stored.subarray(saltLen + 2, stored.length - 10);
    const mac = stored.subarray(stored.length - 10);
    const macKey = await subtle.importKey("raw", bits.subarray(32, 64), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
    const tag = new Uint8Array(await subtle.sign("HMAC", macKey, plain));
    macOk = equal(tag.subarray(0, 10), mac);
    decrypt(bits.subarray(0, 32), plain);
  }
  const sha256 = hex(await subtle.digest("SHA-256", plain));
  const result = { pvOk: true, macOk, sha256, size: plain.length };
  if (wantData) {
    // Transfer a buffer that holds exactly the plaintext.
    const data = plain.byteOffset === 0 && plain.length === plain.buffer.byteLength ? plain.buffer : plain.slice().buffer;
    result.data = data;
  }
  return result;
}

self.onmessage = async (event) => {
  const { id, job } = event.data;
  try {
    const result = await entry(job);
    self.postMessage({ id, result }, result.data ? [result.data] : []);
  } catch (e) {
    self.postMessage({ id, error: String(e?.message ?? e) });
  }
};
