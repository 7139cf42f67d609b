"""Is an image's pixel data whole? The check behind :func:`kiosk.dicom.instance.check_pixel_data`.

What counts as damage, and nothing else (a verification failure stops a clean disc from
importing as clean):

* native pixel data shorter than Rows × Columns × Samples × Bits × Frames, or running past the
  end of the file (longer is padding: pydicom, for one, drops it);
* encapsulated pixel data (PS3.5 A.4) without whole items and a sequence delimiter, or without
  a single fragment after its Basic Offset Table;
* a deflated data set (PS3.5 A.5) that does not inflate: its pixel data is read from the
  inflated stream (:mod:`kiosk.dicom.deflate`).

Every transfer syntax pydicom reads is handled: implicit and explicit VR, little and big endian,
deflated, and every encapsulated one; the encapsulated ones are checked by their items, not by
their codec, so syntaxes pydicom cannot decode (HTJ2K, MPEG, HEVC...) are checked too.

The fragment walk reads blocks and parses item headers from them; runs of items of one length
(millions of empty fragments are the classic hostile case) are matched with numpy a block at a
time. All of it spends from the import's :class:`~kiosk.dicom.deadline.Deadline`.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Protocol

import numpy as np

from kiosk.dicom.deadline import Deadline
from kiosk.dicom.deflate import InflatedFile, InflateError

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_SEQ_DELIM = 0xFFFEE0DD
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
# VRs a pixel data element can have in explicit VR (PS3.5 8.2, A.4; UN after a conversion):
# all are "long" VRs, with 2 reserved bytes and a 32-bit length (PS3.5 7.1.2).
_PIXEL_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"})

IMPLICIT_LE, BIG_ENDIAN = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"
#: Encapsulated syntaxes: every JPEG family, JPIP, MPEG, HEVC, HTJ2K and JPEG XL (1.2.4.*), RLE
#: (1.2.5), SMPTE ST 2110 (1.2.7.*), Deflated Image Frame Compression (1.2.8.*) and Encapsulated
#: Uncompressed (1.2.1.98), all under 1.2.840.10008.
_ENCAPSULATED_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.7.",
                          "1.2.840.10008.1.2.8.", "1.2.840.10008.1.2.1.98")
#: JPIP Referenced syntaxes: the pixel data is not in the file (a Pixel Data Provider URL is).
JPIP_REFERENCED = frozenset({"1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95",
                             "1.2.840.10008.1.2.4.204", "1.2.840.10008.1.2.4.205"})

_FIRST_BLOCK = 4 << 10  # read after a skip: the next item header is all that is needed
_BLOCK = 1 << 20  # read when the items are small
_DENSE = 16  # items parsed from one block before numpy takes the rest of it
_RUN_MAX_ITEM = 4096  # a run's items are at most this long (longer ones are few anyway)


def is_encapsulated(transfer_syntax: str) -> bool:
    """Whether pixel data in this transfer syntax is encapsulated (PS3.5 A.4)."""
    return transfer_syntax.startswith(_ENCAPSULATED_PREFIXES)


class _Stream(Protocol):
    """What the checks read: positions are in the file, or in the inflated data set."""

    where: str

    def read(self, size: int, /) -> bytes: ...

    def seek(self, offset: int, /) -> int: ...

    def reach(self, target: int, /) -> int: ...


class _FileStream:
    """A file's own bytes (every syntax but the deflated ones)."""

    where = "file"

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self._fp, self._size = fp, size

    def read(self, size: int, /) -> bytes:
        return self._fp.read(size)

    def seek(self, offset: int, /) -> int:
        return self._fp.seek(offset)

    def reach(self, target: int, /) -> int:
        return min(target, self._size)


class _InflatedStream:
    """A deflated file's data set, inflated as it is read."""

    where = "inflated data set"

    def __init__(self, inflated: InflatedFile) -> None:
        self._f = inflated

    def read(self, size: int, /) -> bytes:
        return self._f.read(size)

    def seek(self, offset: int, /) -> int:
        return self._f.seek(offset)

    def reach(self, target: int, /) -> int:
        return self._f.reach(target)


def check(fp: BinaryIO, size: int, *, transfer_syntax: str, pixel_offset: int,
          deflated_at: int | None, expected: int | None, deadline: Deadline) -> str | None:
    """Check the pixel data element at ``pixel_offset``; return the problem, or None if whole.

    Parameters
    ----------
    fp : binary file
        The instance's bytes; ``size`` of them.
    transfer_syntax : str
        From the File Meta Information (empty for a raw data set: implicit VR little endian).
    pixel_offset : int
        Where the header parse stopped: the pixel data element's tag, or the end of the data.
        For a deflated data set, a position in the inflated data set.
    deflated_at : int or None
        For a deflated data set, the file offset of its deflate stream.
    expected : int or None
        Native pixel data bytes the header implies (:func:`expected_bytes`), None if unknown.
    deadline : Deadline
        Spent from as the data is read.

    Raises
    ------
    kiosk.dicom.deadline.TimeLimitReached
        The deadline passed before the check was done.
    """
    stream: _Stream
    if deflated_at is None:
        stream = _FileStream(fp, size)
    else:
        stream = _InflatedStream(InflatedFile(fp, deflated_at, deadline=deadline))
    try:
        return _check(stream, transfer_syntax, pixel_offset, expected, deadline)
    except InflateError as exc:
        return f"damaged deflated data: {exc}"


def _check(stream: _Stream, ts: str, start: int, expected: int | None,
           deadline: Deadline) -> str | None:
    endian = ">" if ts == BIG_ENDIAN else "<"
    stream.seek(start)
    first = stream.read(12)
    if len(first) < 8:
        if ts in JPIP_REFERENCED:
            return None  # the pixel data is fetched from its provider, not stored in the file
        return f"image has no pixel data (the {stream.where} ends after the header)"
    group, elem = struct.unpack_from(f"{endian}HH", first)
    if (group << 16 | elem) not in _PIXEL_TAGS:
        return None if ts in JPIP_REFERENCED else "image has no pixel data element"
    # pydicom reads a data set in the VR encoding its first element shows, whatever the
    # transfer syntax says (real files have implicit VR under explicit syntaxes); so must this.
    vr_bytes = first[4:6] in _PIXEL_VRS
    explicit = vr_bytes if ts != IMPLICIT_LE and ts else vr_bytes and first[6:8] == b"\0\0"
    if explicit:
        if len(first) < 12:
            return f"truncated pixel data: the {stream.where} ends in its element header"
        length = struct.unpack_from(f"{endian}L", first, 8)[0]
        value_start = start + 12
    else:
        length = struct.unpack_from(f"{endian}L", first, 4)[0]
        value_start = start + 8
    if length == _UNDEFINED:
        return _check_fragments(stream, value_start, endian, deadline)
    present = stream.reach(value_start + length) - value_start
    if present < length:
        return (f"truncated pixel data: {length} bytes declared, {max(present, 0)} present in "
                f"the {stream.where}")
    if is_encapsulated(ts):
        return "encapsulated transfer syntax but pixel data has a defined length"
    if expected is not None and length < expected:
        return (f"pixel data is {length} bytes; Rows × Columns × Samples × Bits × Frames "
                f"gives {expected}")
    return None


def expected_bytes(rows: int | None, columns: int | None, bits_allocated: int | None,
                   samples_per_pixel: int | None, number_of_frames: int | None,
                   photometric: str) -> int | None:
    """Native (uncompressed) pixel data length implied by the header, or None if unknown."""
    if not (rows and columns and bits_allocated):
        return None
    samples = samples_per_pixel or 1
    frames = number_of_frames or 1
    if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        samples = 2  # two bytes-per-pixel worth of chroma subsampled data (PS3.3 C.7.6.3.1.2)
    bits = rows * columns * samples * frames * bits_allocated
    return (bits + 7) // 8


def _check_fragments(stream: _Stream, pos: int, endian: str, deadline: Deadline) -> str | None:
    """Walk the items of encapsulated pixel data from ``pos`` to the sequence delimiter.

    Items are parsed from blocks; a block grows from 4 KiB to 1 MiB while the items are small
    and falls back to 4 KiB after an item too long for it (skipped by seeking: a large frame
    costs one small read). Once a block turns out to hold many items, numpy takes the rest of
    it: :func:`_run` for items of one length, :func:`_chain` for any others.
    """
    head = struct.Struct(f"{endian}HHL")
    item_prefix = struct.pack(f"{endian}HH", 0xFFFE, 0xE000)
    dtype = f"{endian}u4"
    item_word = int(np.frombuffer(item_prefix, dtype)[0])
    stream.seek(pos)
    buf, i, base = b"", 0, pos  # the block, the parse position in it, its stream position
    want = _FIRST_BLOCK
    items = 0  # the Basic Offset Table included
    dense, last_length = 0, -1  # items parsed here from this block; the last one's length
    while True:
        if len(buf) - i < 8:
            base += i
            more = stream.read(want)
            deadline.spend(len(more))
            buf, i, dense = buf[i:] + more, 0, 0
            want = min(want * 4, _BLOCK)
            if len(buf) < 8:
                return (f"truncated encapsulated pixel data: the {stream.where} ends before "
                        "the sequence delimiter")
        group, elem, length = head.unpack_from(buf, i)
        tag = group << 16 | elem
        if tag != _ITEM:
            if tag == _SEQ_DELIM:
                break
            return f"damaged encapsulated pixel data: unexpected item at byte {base + i}"
        if length == _UNDEFINED:
            return f"damaged encapsulated pixel data: undefined length item at byte {base + i}"
        end = i + 8 + length
        items += 1
        if end > len(buf):
            target = base + end
            reached = stream.reach(target)
            deadline.spend(length)
            if reached < target:
                return (f"truncated encapsulated pixel data: fragment at byte {base + i} needs "
                        f"{length} bytes, {max(reached - base - i - 8, 0)} present")
            stream.seek(target)
            buf, i, base, want = b"", 0, target, _FIRST_BLOCK
            continue
        i, dense = end, dense + 1
        if dense < _DENSE:
            continue  # a few items per block (frames): nothing to speed up
        if length == last_length and length <= _RUN_MAX_ITEM:
            n = _run(buf, i, length, item_prefix + struct.pack(f"{endian}L", length))
            i, items = i + n * (8 + length), items + n
        i, n = _chain(buf, i, item_word, dtype)
        items += n
        last_length, dense = length, 0
    if items < 2:  # the first item is the Basic Offset Table
        return "encapsulated pixel data has no fragments"
    return None


def _chain(buf: bytes, i: int, item_word: int, dtype: str) -> tuple[int, int]:
    """Follow the items from ``i`` through ``buf`` with numpy; return (where it stops, items).

    It stops at the first item whose successor is not an item header lying wholly in ``buf``
    (the sequence delimiter, damage, or the end of the block), which the caller then parses.
    Every item tag in the block is a candidate; each is linked to the candidate right after it,
    and the links are followed by doubling (``log2`` of the items, each step over all of them),
    so the cost does not depend on how irregular the lengths are.
    """
    n = len(buf) - i
    if n < 16:
        return i, 0
    # Every 4-byte word at every byte offset (a strided view of the block, no copy).
    words = np.ndarray((n - 3,), dtype=dtype, buffer=buf, offset=i, strides=(1,))
    starts = np.flatnonzero(words[:n - 7] == item_word)  # item headers wholly in the block
    if starts.size < 2 or starts[0] != 0:
        return i, 0
    lengths = words[starts + 4].astype(np.int64)
    after = starts + 8 + lengths
    following = np.searchsorted(starts, after)
    linked = (following < starts.size) & (lengths != _UNDEFINED)
    linked[linked] = starts[following[linked]] == after[linked]
    jump = np.where(linked, following, np.arange(starts.size))
    steps = linked.astype(np.int64)
    while jump[jump[0]] != jump[0]:  # until the first item's jump lands on the last one
        steps += steps[jump]
        jump = jump[jump]
    return i + int(starts[jump[0]]), int(steps[0])


def _run(buf: bytes, i: int, length: int, header: bytes) -> int:
    """How many items with exactly this ``header`` (tag and ``length``) follow at ``i``."""
    stride = 8 + length
    k = (len(buf) - i) // stride
    if k == 0:
        return 0
    # Each item's 8 header bytes as one 64-bit word, ``stride`` bytes apart (a view, no copy).
    words = np.ndarray((k,), dtype="<u8", buffer=buf, offset=i, strides=(stride,))
    same = words == np.frombuffer(header, "<u8")[0]
    return k if bool(same.all()) else int(np.argmin(same))
