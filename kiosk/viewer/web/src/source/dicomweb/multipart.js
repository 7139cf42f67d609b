// WADO-RS answers are multipart/related (PS3.18 8.7.1): the parts, each with its own headers,
// separated by "--boundary" lines. The boundary comes from the Content-Type; a server that
// leaves it out still starts the body with it, so the first line is the fallback.

const CRLF2 = [13, 10, 13, 10];

function indexOf(bytes, needle, from = 0) {
  const first = needle[0];
  const last = bytes.length - needle.length;
  outer: for (let i = bytes.indexOf(first, from); i !== -1 && i <= last; i = bytes.indexOf(first, i + 1)) {
    for (let k = 1; k < needle.length; k++) if (bytes[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The boundary of a multipart Content-Type (`multipart/related; type=...; boundary=...`).
 * @param {string|null} contentType
 * @returns {string|null}
 */
export function boundaryOf(contentType) {
  const m = /(?:^|;)\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  return m ? (m[1] ?? m[2]) : null;
}

/**
 * Split a multipart body into its parts.
 * @param {Uint8Array} body
 * @param {string|null} contentType the answer's Content-Type
 * @returns {{headers: Record<string, string>, body: Uint8Array}[]}
 * @throws {Error} when the body is not multipart
 */
export function parseMultipart(body, contentType) {
  let boundary = boundaryOf(contentType);
  if (!boundary && body[0] === 45 && body[1] === 45) {
    const eol = body.indexOf(13);
    boundary = new TextDecoder("latin1").decode(body.subarray(2, eol < 0 ? 72 : eol)).trim();
  }
  if (!boundary) throw new Error("not a multipart answer");
  const delimiter = new TextEncoder().encode(`--${boundary}`);
  const parts = [];
  let at = indexOf(body, delimiter);
  if (at < 0) throw new Error("multipart boundary not found");
  for (;;) {
    let start = at + delimiter.length;
    if (body[start] === 45 && body[start + 1] === 45) break; // "--boundary--": the end
    if (body[start] === 13 && body[start + 1] === 10) start += 2;
    const headEnd = indexOf(body, CRLF2, start);
    if (headEnd < 0) throw new Error("multipart part without headers' end");
    const headers = {};
    for (const line of new TextDecoder("latin1").decode(body.subarray(start, headEnd)).split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const next = indexOf(body, delimiter, headEnd + 4);
    if (next < 0) throw new Error("multipart body is cut short");
    // The part ends before the CRLF that precedes the next delimiter.
    let end = next;
    if (body[end - 2] === 13 && body[end - 1] === 10) end -= 2;
    parts.push({ headers, body: body.subarray(headEnd + 4, end) });
    at = next;
  }
  return parts;
}
