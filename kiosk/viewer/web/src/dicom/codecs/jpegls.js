// JPEG-LS lossless and near-lossless (1.2.840.10008.1.2.4.80/.81) with CharLS.
import factory from "@cornerstonejs/codec-charls/decodewasmjs";
import wasmBinary from "@cornerstonejs/codec-charls/decodewasm";
import { interleave } from "../native.js";
import { codecError, lazyCodec, samplesOf } from "./wasm.js";

const codec = lazyCodec(factory, wasmBinary, "JpegLSDecoder");

/** @param {Uint8Array} bytes */
export async function decodeJpegLs(bytes) {
  const { module, decoder } = await codec.get();
  try {
    decoder.getEncodedBuffer(bytes.length).set(bytes);
    decoder.decode();
    const info = decoder.getFrameInfo();
    let samples = samplesOf(decoder.getDecodedBuffer(), info.bitsPerSample);
    // Interleave mode "none" gives one plane per component.
    if (info.componentCount > 1 && decoder.getInterleaveMode() === 0) {
      samples = interleave(samples, info.width * info.height, info.componentCount);
    }
    return { samples, rows: info.height, columns: info.width, components: info.componentCount };
  } catch (e) {
    throw codecError(module, e);
  }
}
