// The picked volume files as one byte range: the kiosk splits IMAGES.zip by bytes into
// IMAGES.zip.001, .002, … (what 7-Zip writes and opens), so concatenated in order they are the
// zip. Nothing is read whole: a read is a Blob.slice of the one or two parts it spans.

export class Volumes {
  /** @param {Blob[]} parts in order */
  constructor(parts) {
    this.parts = parts;
    this.starts = [];
    let offset = 0;
    for (const part of parts) {
      this.starts.push(offset);
      offset += part.size;
    }
    this.size = offset;
  }

  /**
   * The bytes [offset, offset + length) as a Blob (slices of the parts, no copy).
   * @param {number} offset
   * @param {number} length
   */
  slice(offset, length) {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`bytes ${offset}+${length} are past the end of the archive`);
    }
    const pieces = [];
    let at = offset;
    let left = length;
    for (let i = this._partAt(offset); left > 0; i++) {
      const start = at - this.starts[i];
      const n = Math.min(left, this.parts[i].size - start);
      pieces.push(this.parts[i].slice(start, start + n));
      at += n;
      left -= n;
    }
    return pieces.length === 1 ? pieces[0] : new Blob(pieces);
  }

  /** The bytes [offset, offset + length) as a Uint8Array. */
  async read(offset, length) {
    return new Uint8Array(await this.slice(offset, length).arrayBuffer());
  }

  _partAt(offset) {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
