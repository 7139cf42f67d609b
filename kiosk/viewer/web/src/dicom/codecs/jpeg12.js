// JPEG extended 12-bit (1.2.840.10008.1.2.4.51) with the pure-JS decoder (derived from
// pdf.js) that ships in @cornerstonejs/dicom-image-loader; libjpeg-turbo here is 8-bit only.
import JpegImage from "../../../node_modules/@cornerstonejs/dicom-image-loader/dist/esm/codecs/jpeg.js";

// That decoder level-shifts 12-bit samples by 2056 / (255 / 4095) = 33016.9 sixteenths where
// the standard's 2^11 (plus rounding) is 32776: every sample comes out 15 too bright
// ((33016 - 32776) / 16 = 15 exactly; 8-bit is right). It clamps at 0 and 4095 before that,
// so its 0..14 are below black and its 4095 stands for anything from 4079 up (left white).
const SHIFT12 = 15;

/** Undo the decoder's 12-bit level-shift error, in place. */
function fixLevelShift(samples) {
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i];
    samples[i] = v >= 4095 ? 4095 : v > SHIFT12 ? v - SHIFT12 : 0;
  }
  return samples;
}

/**
 * @param {Uint8Array} bytes
 * @param {{rows: number, columns: number}} g
 */
export function decodeJpeg12(bytes, g) {
  const jpeg = new JpegImage();
  jpeg.parse(bytes);
  // DICOM says what the colour is; do not let the decoder guess a transform.
  jpeg.colorTransform = false;
  if (jpeg.width !== g.columns || jpeg.height !== g.rows) {
    return { samples: new Uint16Array(0), rows: jpeg.height, columns: jpeg.width };
  }
  const samples = jpeg.getData16(g.columns, g.rows);
  // The components' bitConversion is 255 / (2^precision - 1): 12-bit frames need the fix.
  const precision = Math.round(Math.log2(255 / jpeg.components[0].bitConversion + 1));
  return { samples: precision === 12 ? fixLevelShift(samples) : samples, rows: jpeg.height,
    columns: jpeg.width, components: jpeg.components.length };
}
