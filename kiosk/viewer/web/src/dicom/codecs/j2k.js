// JPEG 2000 (1.2.840.10008.1.2.4.90/.91) with OpenJPEG, which undoes the codestream's own
// colour transform (YBR_RCT/YBR_ICT come out RGB).
import factory from "@cornerstonejs/codec-openjpeg/decodewasmjs";
import wasmBinary from "@cornerstonejs/codec-openjpeg/decodewasm";
import { lazyCodec, runDecoder } from "./wasm.js";

const codec = lazyCodec(factory, wasmBinary, "J2KDecoder");

/** @param {Uint8Array} bytes */
export async function decodeJ2k(bytes) {
  return runDecoder(await codec.get(), bytes);
}
