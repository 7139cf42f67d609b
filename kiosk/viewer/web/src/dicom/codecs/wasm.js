// The codecs' Emscripten modules, made once per page on first use. Their WebAssembly is in the
// page (esbuild's binary loader) and handed over as `wasmBinary`: a file:// page can fetch
// nothing, and the factory would otherwise try.

/**
 * A lazily made codec: `get()` resolves to {module, decoder} the first time it is called and
 * the same object after; a failed start is retried on the next call.
 * @param {(opts: object) => Promise<any>} factory the Emscripten factory
 * @param {Uint8Array} wasmBinary
 * @param {string} className the decoder class to instantiate (JPEGDecoder, J2KDecoder...)
 */
export function lazyCodec(factory, wasmBinary, className) {
  let ready = null;
  return {
    get() {
      ready ??= Promise.resolve()
        .then(() => factory({ wasmBinary, locateFile: (f) => f }))
        .then((module) => ({ module, decoder: new module[className]() }))
        .catch((e) => {
          ready = null;
          throw e;
        });
      return ready;
    },
  };
}

/** Emscripten throws numbers (pointers to C++ exceptions): turn them into messages. */
export function codecError(module, e) {
  if (typeof e === "number") {
    try {
      return new Error(module.getExceptionMessage?.(e) ?? `codec error ${e}`);
    } catch {
      return new Error(`codec error ${e}`);
    }
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** Copy a view into WebAssembly memory out (the codec reuses and grows that memory). */
export function samplesOf(view, bitsPerSample) {
  const bytes = new Uint8Array(view.length);
  bytes.set(view);
  return bitsPerSample > 8 ? new Uint16Array(bytes.buffer, 0, bytes.length >> 1) : bytes;
}

/**
 * Run one of the Cornerstone codecs on a codestream: copy it in, decode, copy the samples out.
 * @param {{module: object, decoder: object}} codec what `lazyCodec(...).get()` gave
 * @param {Uint8Array} stream the codestream
 * @param {(decoder: object, info: object, samples: ArrayLike<number>) => object} [shape]
 *   the result from the decoded samples (default: as decoded, colour "RGB")
 */
export function runDecoder({ module, decoder }, stream, shape) {
  try {
    decoder.getEncodedBuffer(stream.length).set(stream);
    decoder.decode();
    const info = decoder.getFrameInfo();
    const samples = samplesOf(decoder.getDecodedBuffer(), info.bitsPerSample);
    return shape ? shape(decoder, info, samples) : { samples, colour: "RGB", rows: info.height,
      columns: info.width, components: info.componentCount };
  } catch (e) {
    throw codecError(module, e);
  }
}
