// JPEG-LS lossless and near-lossless (1.2.840.10008.1.2.4.80/.81) with CharLS.
import factory from "@cornerstonejs/codec-charls/decodewasmjs";
import wasmBinary from "@cornerstonejs/codec-charls/decodewasm";
import { interleave } from "../native.js";
import { lazyCodec, runDecoder } from "./wasm.js";

const codec = lazyCodec(factory, wasmBinary, "JpegLSDecoder");

/**
 * Whether the codestream ends with its EOI marker (FF D9), allowing the zero bytes that pad a
 * DICOM fragment to an even length.
 */
function hasEnd(bytes) {
  let end = bytes.length;
  while (end > 2 && bytes.length - end < 8 && bytes[end - 1] === 0) end--;
  return end >= 2 && bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9;
}

/** @param {Uint8Array} bytes */
export async function decodeJpegLs(bytes) {
  // CharLS spends seconds on a codestream cut short (7.8 s for a 96×96 CT cut to a third, on
  // the page's only thread) before it gives up: refuse one without its end at once.
  if (!hasEnd(bytes)) throw new Error("the JPEG-LS data ends before its end marker");
  return runDecoder(await codec.get(), bytes, (decoder, info, samples) => {
    // Interleave mode "none" gives one plane per component.
    const planes = info.componentCount > 1 && decoder.getInterleaveMode() === 0;
    return { samples: planes ? interleave(samples, info.width * info.height, info.componentCount) : samples,
      rows: info.height, columns: info.width, components: info.componentCount };
  });
}
