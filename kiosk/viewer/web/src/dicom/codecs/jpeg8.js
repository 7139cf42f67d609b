// JPEG baseline/extended 8-bit (1.2.840.10008.1.2.4.50, 8-bit .51) with libjpeg-turbo. Like
// other viewers and pydicom's decoders, libjpeg converts YCbCr to RGB, so YBR comes out RGB.
import factory from "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs";
import wasmBinary from "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm";
import { codecError, lazyCodec, samplesOf } from "./wasm.js";

const codec = lazyCodec(factory, wasmBinary, "JPEGDecoder");

/** @param {Uint8Array} bytes */
export async function decodeJpeg8(bytes) {
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
