// JPEG extended 12-bit (1.2.840.10008.1.2.4.51) with the pure-JS decoder (derived from
// pdf.js) that ships in @cornerstonejs/dicom-image-loader; libjpeg-turbo here is 8-bit only.
import JpegImage from "../../../node_modules/@cornerstonejs/dicom-image-loader/dist/esm/codecs/jpeg.js";

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
  return { samples: jpeg.getData16(g.columns, g.rows), rows: jpeg.height, columns: jpeg.width,
    components: jpeg.components.length };
}
