"""Deflated data sets (PS3.5 A.5), inflated as they are read, within bounds.

In the deflated transfer syntaxes everything after the File Meta Information, pixel data
included, is one raw deflate stream (RFC 1951, no zlib header). pydicom inflates the whole
stream into memory before it reads a single element: a 2 MB file holding gigabytes of zeros
would take them all. Here the stream is inflated as it is read, holding at most a small window
of it, and never beyond :data:`MAX_INFLATED_BYTES` (a 32-bit pixel data element and a header).
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from kiosk.dicom.deadline import Deadline

#: Transfer syntaxes whose data set is deflated: Deflated Explicit VR Little Endian, and the
#: JPIP Referenced Deflate syntaxes (their pixel data is elsewhere; the rest is deflated).
DEFLATED_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.95",  # JPIP Referenced Deflate
    "1.2.840.10008.1.2.4.205",  # JPIP HTJ2K Referenced Deflate
})

#: The most a deflated data set may inflate to: the largest pixel data element (its length is
#: 32 bits) and 64 MiB of header. Deflate reaches ratios over 1000:1, so this, not the file's
#: size, is what bounds the work.
MAX_INFLATED_BYTES = (1 << 32) + (64 << 20)

_IN_CHUNK = 256 << 10  # compressed bytes read at a time
_OUT_CHUNK = 1 << 20  # inflated bytes made at a time (zlib's max_length)
#: Inflated bytes kept behind the read position, for the short backward seeks pydicom makes
#: (it rewinds to the pixel data tag; it re-reads a few bytes around undefined lengths).
WINDOW = 1 << 20


class InflateError(Exception):
    """The deflate stream cannot be inflated (damaged), or inflates past the bounds."""


class InflatedFile(io.RawIOBase):
    """The inflated data set of a deflated file, as a read-only file object.

    Positions count bytes of the inflated data set. Reading or seeking forward inflates as
    far as needed; seeking back is possible within :data:`WINDOW` bytes.

    Parameters
    ----------
    fp : binary file
        The file; its deflate stream starts at ``offset``.
    offset : int
        File offset of the deflate stream (the end of the File Meta Information).
    deadline : Deadline, optional
        Checked as the stream is inflated.
    limit : int
        Inflating past this many bytes raises :class:`InflateError`.

    Raises
    ------
    InflateError
        From any read or seek: the stream is damaged, or inflates past ``limit``.
    kiosk.dicom.deadline.TimeLimitReached
        The deadline passed.
    """

    def __init__(self, fp: BinaryIO, offset: int, *, deadline: Deadline | None = None,
                 limit: int = MAX_INFLATED_BYTES) -> None:
        super().__init__()
        self._fp, self._offset = fp, offset
        self._deadline = deadline or Deadline()
        self._limit = limit
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self._tail = b""  # compressed input zlib has not consumed yet
        self._buf = bytearray()  # inflated bytes, from stream position _buf_start
        self._buf_start = 0
        self._pos = 0
        self._in_pos = offset  # file position of the next compressed read
        #: True once the deflate stream has ended (its final block was inflated).
        self.ended = False
        #: True when the file ended before the deflate stream did (a cut file).
        self.cut = False

    # --- what has been inflated -----------------------------------------------------------

    @property
    def produced(self) -> int:
        """Inflated bytes made so far."""
        return self._buf_start + len(self._buf)

    @property
    def done(self) -> bool:
        """No more bytes will come: the stream ended, or the file did."""
        return self.ended or self.cut

    def reach(self, target: int) -> int:
        """Inflate up to stream position ``target`` if the data set is that long.

        Returns the position reached: ``target``, or the data set's length if shorter. Only
        the :data:`WINDOW` bytes before it are kept: reading further back fails afterwards.
        """
        return self._fill(target, keep_from=target - WINDOW)

    def _fill(self, target: int, keep_from: int) -> int:
        while self.produced < target and not self.done:
            self._inflate_some(keep_from)
        return min(self.produced, target)

    def _inflate_some(self, keep_from: int) -> None:
        data = self._tail
        if not data:
            self._fp.seek(self._in_pos)
            data = self._fp.read(_IN_CHUNK)
            self._in_pos += len(data)
            self._deadline.spend(len(data))
            if not data:
                self.cut = True
                return
        try:
            out = self._z.decompress(data, _OUT_CHUNK)
        except zlib.error as exc:
            raise InflateError(f"the deflated data set does not inflate after "
                               f"{self.produced:,} bytes ({exc})") from None
        self._tail = self._z.unconsumed_tail
        if self._z.eof:
            self.ended, self._tail = True, b""
        if self.produced + len(out) > self._limit:
            raise InflateError(f"the deflated data set inflates to more than "
                               f"{self._limit:,} bytes: not read further")
        self._deadline.spend(len(out))
        self._buf += out
        # Drop what lies before the window: a skip over gigabytes holds one window at most.
        drop = max(0, min(keep_from, self.produced) - self._buf_start)
        if drop:
            del self._buf[:drop]
            self._buf_start += drop

    # --- the file object pydicom and the checks read -------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            while not self.done:
                self._inflate_some(keep_from=self.produced - WINDOW)
            offset += self.produced
        if offset < 0:
            raise OSError("negative seek position")
        self._pos = offset  # inflated lazily, by the next read
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._limit - self._pos
        end = self._fill(self._pos + size, keep_from=min(self._pos, self._pos + size - WINDOW))
        if self._pos < self._buf_start:
            raise InflateError("a seek went further back than the inflated window")
        data = bytes(self._buf[self._pos - self._buf_start:end - self._buf_start])
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
