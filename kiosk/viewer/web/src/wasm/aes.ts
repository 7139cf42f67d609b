// AES-256 in counter mode with WinZip's little-endian counter (AE-2: a 16-byte counter block
// holding the block number, starting at 1, least significant byte first). WebCrypto's AES-CTR
// counts big-endian, so it cannot produce this keystream; this is the classic four-table
// ("T-table") AES encryption (FIPS-197 §5.1, as in OpenSSL's aes_core.c), compiled to
// WebAssembly. Timing side channels do not matter here: the page decrypts its own stick.
//
// Memory: the tables and round keys are static data; the caller's buffer starts at
// `dataPtr()` and `reserve(n)` grows the memory to hold n bytes there.

const SBOX = memory.data(256);
const TE0 = memory.data(1024);
const TE1 = memory.data(1024);
const TE2 = memory.data(1024);
const TE3 = memory.data(1024);
const RK = memory.data(240); // 60 round-key words, big-endian values
const KEY = memory.data(32); // the key the caller writes before setKey()
let ready = false;

@inline function xtime(x: u32): u32 {
  return ((x << 1) ^ ((x & 0x80) != 0 ? 0x1b : 0)) & 0xff;
}

@inline function rotl8(x: u32, n: u32): u32 {
  return ((x << n) | (x >> (8 - n))) & 0xff;
}

function buildTables(): void {
  // The S-box from the multiplicative inverse in GF(2^8) and the affine map (FIPS-197 §5.1.1),
  // walking p over the field by multiplying by 3 and q by its inverse.
  let p: u32 = 1;
  let q: u32 = 1;
  do {
    p = (p ^ xtime(p)) & 0xff;
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    const x = q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4);
    store<u8>(SBOX + p, <u8>(x ^ 0x63));
  } while (p != 1);
  store<u8>(SBOX, 0x63);
  for (let i: u32 = 0; i < 256; i++) {
    const s: u32 = load<u8>(SBOX + i);
    const s2 = xtime(s);
    const s3 = s2 ^ s;
    const w = (s2 << 24) | (s << 16) | (s << 8) | s3;
    store<u32>(TE0 + (i << 2), w);
    store<u32>(TE1 + (i << 2), rotr<u32>(w, 8));
    store<u32>(TE2 + (i << 2), rotr<u32>(w, 16));
    store<u32>(TE3 + (i << 2), rotr<u32>(w, 24));
  }
  ready = true;
}

@inline function sub(w: u32): u32 {
  return (<u32>load<u8>(SBOX + (w >> 24)) << 24) | (<u32>load<u8>(SBOX + ((w >> 16) & 0xff)) << 16)
    | (<u32>load<u8>(SBOX + ((w >> 8) & 0xff)) << 8) | <u32>load<u8>(SBOX + (w & 0xff));
}

/** Where the caller writes the 32-byte key before `setKey()`. */
export function keyPtr(): usize {
  return KEY;
}

/** Expand the key at `keyPtr()` into the round keys (FIPS-197 §5.2, Nk = 8, Nr = 14). */
export function setKey(): void {
  if (!ready) buildTables();
  for (let i = 0; i < 8; i++) store<u32>(RK + (i << 2), bswap<u32>(load<u32>(KEY + (i << 2))));
  let rcon: u32 = 1;
  for (let i = 8; i < 60; i++) {
    let t = load<u32>(RK + ((i - 1) << 2));
    if (i % 8 == 0) {
      t = sub(rotl<u32>(t, 8)) ^ (rcon << 24);
      rcon = xtime(rcon);
    } else if (i % 8 == 4) {
      t = sub(t);
    }
    store<u32>(RK + (i << 2), load<u32>(RK + ((i - 8) << 2)) ^ t);
  }
}

@inline function te0(x: u32): u32 { return load<u32>(TE0 + ((x >> 24) << 2)); }
@inline function te1(x: u32): u32 { return load<u32>(TE1 + (((x >> 16) & 0xff) << 2)); }
@inline function te2(x: u32): u32 { return load<u32>(TE2 + (((x >> 8) & 0xff) << 2)); }
@inline function te3(x: u32): u32 { return load<u32>(TE3 + ((x & 0xff) << 2)); }
@inline function rk(i: u32): u32 { return load<u32>(RK + (i << 2)); }
@inline function sb(x: u32): u32 { return <u32>load<u8>(SBOX + (x & 0xff)); }

/** The start of the caller's data buffer. */
export function dataPtr(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/** Make room for `n` bytes at `dataPtr()`; returns dataPtr(). */
export function reserve(n: usize): usize {
  const end = dataPtr() + n;
  const have = <usize>memory.size() << 16;
  if (end > have) memory.grow(<i32>((end - have + 0xffff) >> 16));
  return dataPtr();
}

/**
 * XOR the WinZip keystream into `len` bytes at `ptr`, in place. `block` is the counter of
 * the first 16 bytes (1 for the start of an entry; the keystream of byte offset o of an entry
 * is block 1 + o / 16, so a caller may start at any multiple of 16).
 *
 * Counter-mode caching (as in Bernstein and Schwabe, "New AES software speed records", 2008):
 * the counter block is the block number little-endian in bytes 0-7, zeros after (an entry never
 * reaches 2^64 blocks), so across a run of 256 blocks only byte 0 changes. After round 1 that
 * byte has reached one state word only, and in round 2 it is one of the four table lookups of
 * each word: the rest of rounds 1 and 2 is worked out once per run (5 lookups a block there
 * instead of 32).
 */
export function ctr(ptr: usize, len: usize, block: u64): void {
  let off: usize = 0;
  let c0: u32 = 0, d0: u32 = 0, d1: u32 = 0, d2: u32 = 0, d3: u32 = 0;
  let fresh = true;
  const top = rk(0) >> 24;
  while (off < len) {
    if (fresh || (<u32>block & 0xff) == 0) {
      // The state as big-endian words: bswap of each 32-bit half of the counter.
      const s0 = bswap<u32>(<u32>block) ^ rk(0);
      const s1 = bswap<u32>(<u32>(block >> 32)) ^ rk(1);
      const s2 = rk(2);
      const s3 = rk(3);
      // Round 1 but for te0(s0) (the only lookup of byte 0), then round 2's constant parts.
      c0 = te1(s1) ^ te2(s2) ^ te3(s3) ^ rk(4);
      const a1 = te0(s1) ^ te1(s2) ^ te2(s3) ^ te3(s0) ^ rk(5);
      const a2 = te0(s2) ^ te1(s3) ^ te2(s0) ^ te3(s1) ^ rk(6);
      const a3 = te0(s3) ^ te1(s0) ^ te2(s1) ^ te3(s2) ^ rk(7);
      d0 = te1(a1) ^ te2(a2) ^ te3(a3) ^ rk(8);
      d1 = te0(a1) ^ te1(a2) ^ te2(a3) ^ rk(9);
      d2 = te0(a2) ^ te1(a3) ^ te3(a1) ^ rk(10);
      d3 = te0(a3) ^ te2(a1) ^ te3(a2) ^ rk(11);
      fresh = false;
    }
    const a0 = load<u32>(TE0 + ((((<u32>block) & 0xff) ^ top) << 2)) ^ c0;
    let s0 = te0(a0) ^ d0;
    let s1 = te3(a0) ^ d1;
    let s2 = te2(a0) ^ d2;
    let s3 = te1(a0) ^ d3;
    let t0: u32, t1: u32, t2: u32, t3: u32;
    for (let k: u32 = 12; k < 56; k += 4) {
      t0 = te0(s0) ^ te1(s1) ^ te2(s2) ^ te3(s3) ^ rk(k);
      t1 = te0(s1) ^ te1(s2) ^ te2(s3) ^ te3(s0) ^ rk(k + 1);
      t2 = te0(s2) ^ te1(s3) ^ te2(s0) ^ te3(s1) ^ rk(k + 2);
      t3 = te0(s3) ^ te1(s0) ^ te2(s1) ^ te3(s2) ^ rk(k + 3);
      s0 = t0; s1 = t1; s2 = t2; s3 = t3;
    }
    const o0 = ((sb(s0 >> 24) << 24) | (sb(s1 >> 16) << 16) | (sb(s2 >> 8) << 8) | sb(s3)) ^ rk(56);
    const o1 = ((sb(s1 >> 24) << 24) | (sb(s2 >> 16) << 16) | (sb(s3 >> 8) << 8) | sb(s0)) ^ rk(57);
    const o2 = ((sb(s2 >> 24) << 24) | (sb(s3 >> 16) << 16) | (sb(s0 >> 8) << 8) | sb(s1)) ^ rk(58);
    const o3 = ((sb(s3 >> 24) << 24) | (sb(s0 >> 16) << 16) | (sb(s1 >> 8) << 8) | sb(s2)) ^ rk(59);
    const p = ptr + off;
    if (len - off >= 16) {
      store<u32>(p, load<u32>(p) ^ bswap<u32>(o0));
      store<u32>(p + 4, load<u32>(p + 4) ^ bswap<u32>(o1));
      store<u32>(p + 8, load<u32>(p + 8) ^ bswap<u32>(o2));
      store<u32>(p + 12, load<u32>(p + 12) ^ bswap<u32>(o3));
      off += 16;
    } else {
      // The entry's last, short block.
      const ks = memory.data(16);
      store<u32>(ks, bswap<u32>(o0));
      store<u32>(ks + 4, bswap<u32>(o1));
      store<u32>(ks + 8, bswap<u32>(o2));
      store<u32>(ks + 12, bswap<u32>(o3));
      for (let i: usize = 0; off + i < len; i++) store<u8>(p + i, load<u8>(p + i) ^ load<u8>(ks + i));
      off = len;
    }
    block++;
  }
}
