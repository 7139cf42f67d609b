// JPEG 2000 (1.2.840.10008.1.2.4.90/.91) with OpenJPEG, which undoes the codestream's own
// colour transform (YBR_RCT/YBR_ICT come out RGB).
import factory from "@cornerstonejs/codec-openjpeg/decodewasmjs";
import wasmBinary from "@cornerstonejs/codec-openjpeg/decodewasm";
import { codecError, lazyCodec, samplesOf } from "./wasm.js";

const codec = lazyCodec(factory, wasmBinary, "J2KDecoder");

/** @param {Uint8Array} bytes */
export async function decodeJ2k(bytes) {
  const { module, decoder } = await codec.get();
  try {
    decoder.getEncodedBuffer(bytes.length).set(bytes);
    decoder.decode();
    const info = decoder.getFrameInfo();
    return { samples: samplesOf(decoder.getDecodedBuffer(), info.bitsPerSample), colour: "RGB",
      rows: info.height, columns: info.width, components: info.componentCount };
  } catch (e) {
    throw codecError(module, e);
  }
}
