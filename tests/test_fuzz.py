"""Fuzzing the scan and ingest entry points with hypothesis (issue #9, part 6).

Untrusted media reach the kiosk through four doors, and each is fed here with mutated real
data: DICOM bytes (pydicom's test files, the sample disc, hand-made instances: truncated,
flipped, length fields made huge, VRs changed, sequences nested without end) through the header
scanner, pydicom and the one-pass ingest; DICOMDIR bytes (the same mutations, and record offsets
made to loop) through both DICOMDIR readers; directory trees (unicode and undecodable names,
``..``-like names, symlinks out of the medium and onto themselves, FIFOs, empty files, folders
deeper than the limit) through a whole import, from a folder and from an ISO image of it; and
mutated ISO images through the ISO reader and an import.

The properties: no exception but the documented ones; every example ends within a few seconds
(a hang is interrupted and fails); the medium is never changed and nothing is written outside
the data directory; the import report accounts for every entry of the medium (imported,
rejected, ignored, or read as the DICOMDIR) and is valid JSON. Both DICOMDIR readers, and the
fast header scan and pydicom, must agree wherever the fast one answers.

What it found, each now a named regression test in the ordinary test files:

* two file names that are neither UTF-8 nor GBK were both shown as "�", so the report could
  not tell them apart (``test_import.py::test_two_names_that_are_neither_utf8_nor_gbk_...``);
* the fast DICOMDIR reader read records that dcmread refuses, when a record's Specific
  Character Set is not CS (``test_dicomdir.py::test_a_record_whose_character_set_is_not_cs...``);
* the fast DICOMDIR reader raised TypeError instead of declining (before it was ever merged;
  kept as the property that it may only decline).

CI runs a fixed, repeatable amount (derandomized, well under a minute on two cores). A longer,
random session (new inputs each time)::

    KIOSK_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py

Skip it locally with ``-m "not fuzz"``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kiosk.bootstrap import build_service
from kiosk.cli.main import import_exit_code
from kiosk.dicom import header_scan
from kiosk.dicom.instance import (
    NotReadable,
    check_pixel_data,
    parse_header,
    read_header,
    scan_header,
    sniff,
)
from kiosk.errors import KioskError
from kiosk.ingest.one_pass import Ignored, Rejected, Stored, ingest_file
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.sources import dicomdir
from kiosk.sources.dicomdir import PYDICOM_MAX_BYTES, read_dicomdir
from kiosk.sources.directory import DirectorySource
from kiosk.sources.iso import IsoSource
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import Entry, EntryKind, display_path
from kiosk.store.blobstore import BlobStore
from tests.conftest import PYDICOM_FILES, make_instance

# pydicom warns about every oddity in mutated files; the properties below are what matters.
pytestmark = [pytest.mark.fuzz, pytest.mark.filterwarnings("ignore::UserWarning")]

#: Examples per byte-level test; directory trees and ISO images (each a whole import, ~0.4 s)
#: get a tenth of it. The CI amount takes ~30 s on two cores.
EXAMPLES = int(os.environ.get("KIOSK_FUZZ_EXAMPLES") or 0)
CI_EXAMPLES = 300

settings.register_profile(
    "kiosk-fuzz-ci", max_examples=CI_EXAMPLES, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example], print_blob=True)
settings.register_profile(
    "kiosk-fuzz-long", parent=settings.get_profile("kiosk-fuzz-ci"),
    max_examples=max(EXAMPLES, 1), derandomize=False)
BYTES = settings.get_profile("kiosk-fuzz-long" if EXAMPLES else "kiosk-fuzz-ci")
TREES = settings(BYTES, max_examples=max(BYTES.max_examples // 10, 10))

#: Seconds one example may take before it counts as a hang.
BYTES_SECONDS, TREE_SECONDS = 10, 60


class Hang(BaseException):
    """An example ran past its time (BaseException: no ``except Exception`` swallows it)."""


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Interrupt the block with :class:`Hang` after ``seconds`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- seeds --------------------------------------------------------------------------------------

_PYDICOM_SEEDS = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm", "JPEG2000.dcm", "rtplan.dcm", "test-SR.dcm", "nested_priv_SQ.dcm",
    "no_meta.dcm", "ExplVR_LitEndNoMeta.dcm", "UN_sequence.dcm", "SC_rgb_small_odd.dcm",
    "emri_small_jpeg_2k_lossless.dcm", "reportsi.dcm", "waveform_ecg.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm", "image_dfl.dcm", "charset_files/chrX2.dcm",
)


@functools.cache
def sample_disc() -> Path:
    """The kiosk's own sample hospital disc, written once per session (removed at exit)."""
    base = tempfile.mkdtemp(prefix="kiosk-fuzz-")
    atexit.register(shutil.rmtree, base, True)
    return build_sample_disc(Path(base) / "SAMPLE").root


@functools.cache
def dicom_seeds() -> tuple[bytes, ...]:
    """Real instances: pydicom's test files, the sample disc's images and report, ours."""
    seeds = [(PYDICOM_FILES / name).read_bytes() for name in _PYDICOM_SEEDS
             if (PYDICOM_FILES / name).is_file()]
    disc = sample_disc()
    seeds += [p.read_bytes() for p in sorted(disc.rglob("IM00000[0-1]"))]
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp) / "IM"
        make_instance(made, charset="GB18030", patient_name="王^小东", rows=8, columns=8)
        seeds.append(made.read_bytes())
        make_instance(made, preamble=False, rows=4, columns=4)
        seeds.append(made.read_bytes())
    return tuple(s for s in seeds if len(s) <= 600_000)


@functools.cache
def dicomdir_seeds() -> tuple[bytes, ...]:
    """Real DICOMDIRs: pydicom's (standard, implicit, reordered, ...) and the sample disc's."""
    folder = PYDICOM_FILES / "dicomdirtests"
    paths = [*sorted(folder.glob("DICOMDIR*")), folder / "TINY_ALPHA" / "DICOMDIR",
             sample_disc() / "DICOMDIR"]
    return tuple(p.read_bytes() for p in paths if p.is_file())


_LONG = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
         b"UV"}
_SHORT = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
          b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}


@functools.cache
def element_offsets(data: bytes) -> tuple[tuple[int, bool], ...]:
    """``(offset, long form)`` of the explicit VR LE elements of a seed, walked into sequences.

    Mutations aim at these: a length field or a VR changed in place is what a damaged or
    hostile file looks like, and random bytes rarely hit one.
    """
    out: list[tuple[int, bool]] = []
    pos = 132 if data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data) and len(out) < 2000:
        tag = struct.unpack_from("<HH", data, pos)
        if tag[0] == 0xFFFE:  # item or delimiter: step over its header, into the item
            out.append((pos, True))
            pos += 8
            continue
        vr = data[pos + 4:pos + 6]
        if vr in _LONG and pos + 12 <= len(data):
            length = struct.unpack_from("<L", data, pos + 8)[0]
            out.append((pos, True))
            pos += 12 if vr == b"SQ" or length == 0xFFFFFFFF else 12 + length
        elif vr in _SHORT:
            out.append((pos, False))
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
        else:
            break
    return tuple(out)


def nested_sequences(depth: int, closed: bool) -> bytes:
    """``depth`` sequences of undefined length, each in an item of the one around it."""
    body = b""
    for _ in range(depth):
        end = struct.pack("<HHL", 0xFFFE, 0xE00D, 0) + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
        body = (struct.pack("<HH2sHL", 0x0009, 0x1010, b"SQ", 0, 0xFFFFFFFF)
                + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + (end if closed else b""))
    return body


_HUGE = [0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x80000000, 0x10000, 0xFFFF, 0, 1, 3]
_VRS = [b"SQ", b"UN", b"OB", b"UT", b"US", b"UL", b"XX", b"\0\0", b"ox", b"PN", b"CS", b"AT"]
_TAGS = [(0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD), (0x7FE0, 0x0010),
         (0x0002, 0x0010), (0x0008, 0x0005), (0x0004, 0x1220), (0x0000, 0x0000)]
_OFFSET_TAGS = {b"\x04\x00\x00\x12", b"\x04\x00\x02\x12", b"\x04\x00\x00\x14",
                b"\x04\x00\x20\x14"}


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A real file (``kind``: "dicom" or "dicomdir") with one to four mutations of the kinds
    damaged and hostile media show."""
    seed = draw(st.sampled_from(dicom_seeds() if kind == "dicom" else dicomdir_seeds()))
    data = bytearray(seed)
    fields = element_offsets(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["truncate", "flip", "length", "vr", "tag", "nest", "slice",
                                   "bytes", "offset"]))
        at = draw(st.integers(0, len(data) - 1))
        if fields and op in ("length", "vr", "tag", "nest", "offset"):
            at, long_form = draw(st.sampled_from(fields))
            if at + 12 > len(data):
                continue
            if op == "length":
                value = draw(st.sampled_from([*_HUGE, len(data), len(data) - at]))
                if long_form:
                    struct.pack_into("<L", data, at + 8 if bytes(data[at + 4:at + 6]) in _LONG
                                     else at + 4, value & 0xFFFFFFFF)
                else:
                    struct.pack_into("<H", data, at + 6, value & 0xFFFF)
            elif op == "vr":
                data[at + 4:at + 6] = draw(st.sampled_from(_VRS))
            elif op == "tag":
                struct.pack_into("<HH", data, at, *draw(st.sampled_from(_TAGS)))
            elif op == "nest":
                data[at:at] = nested_sequences(draw(st.integers(1, 400)), draw(st.booleans()))
            else:  # offset: a DICOMDIR record link made to point anywhere (itself, back, out)
                links = [a for a, _long in fields
                         if bytes(data[a:a + 4]) in _OFFSET_TAGS and a + 12 <= len(data)]
                if links:
                    at = draw(st.sampled_from(links))
                    target = draw(st.sampled_from([a for a, _ in fields] + _HUGE))
                    struct.pack_into("<L", data, at + 8, target & 0xFFFFFFFF)
        elif op == "truncate":
            del data[at:]
        elif op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "slice":
            end = draw(st.integers(at, min(len(data), at + 4096)))
            if draw(st.booleans()):
                data[end:end] = data[at:end]  # repeated
            else:
                del data[at:end]
        elif op == "bytes":
            data[at:at + 8] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


# --- (a) DICOM bytes ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> BlobStore:
    root = tmp_path_factory.mktemp("fuzz-store")
    (root / "tmp").mkdir()
    return BlobStore(root / "blobs", root / "tmp")


def _check_dicom_bytes(data: bytes, store: BlobStore, folder: Path) -> None:
    kind = sniff(data[:132])
    assert kind in ("dicom", "maybe", "no")
    assert isinstance(header_scan.scan(data, complete=True),
                      header_scan.Scan | header_scan.Fallback)
    # The fast path may only decline; when it answers, pydicom must give the same header.
    fast = scan_header(io.BytesIO(data))
    if fast is not None:
        assert read_header(io.BytesIO(data), force=False) == fast
    for force in (False, True):
        try:
            header = parse_header(io.BytesIO(data), force=force)
        except NotReadable as exc:
            assert str(exc)
            continue
        problem = check_pixel_data(io.BytesIO(data), len(data), header)
        assert problem is None or isinstance(problem, str)
    # The whole one-pass ingest of the file, from a medium.
    (folder / "IM").write_bytes(data)
    outcome = ingest_file(DirectorySource(folder), Entry("IM", len(data), EntryKind.FILE), store,
                          store.tmp_dir, 0, ScanLimits())
    assert isinstance(outcome, Ignored | Rejected | Stored)
    event(f"ingest: {type(outcome).__name__}, fast header: {fast is not None}")
    if isinstance(outcome, Stored):
        assert outcome.blob.sha256 == hashlib.sha256(data).hexdigest()
        assert outcome.blob.size == len(data)
        store.discard([outcome.blob])
    else:
        assert outcome.reason


@BYTES
@given(data=mutated("dicom"))
def test_mutated_dicom_bytes_never_crash_or_hang_the_header_scan_and_ingest(
        data: bytes, store: BlobStore) -> None:
    with tempfile.TemporaryDirectory() as tmp, bounded(BYTES_SECONDS):
        _check_dicom_bytes(data, store, Path(tmp))


@BYTES
@given(data=st.binary(max_size=2048).map(lambda b: b"\0" * 128 + b"DICM" + b))
def test_garbage_after_the_dicm_marker_never_crashes_the_header_scan_and_ingest(
        data: bytes, store: BlobStore) -> None:
    with tempfile.TemporaryDirectory() as tmp, bounded(BYTES_SECONDS):
        _check_dicom_bytes(data, store, Path(tmp))


# --- (b) DICOMDIR bytes -------------------------------------------------------------------------

def _check_dicomdir_bytes(data: bytes) -> None:
    # The fast reader may only ever decline (anything else is a bug it would hide).
    with contextlib.suppress(dicomdir._Decline):
        for values in dicomdir._scan_records(data):
            assert set(values) <= {"DirectoryRecordType", "ReferencedFileID",
                                   "ReferencedSOPInstanceUIDInFile"}
    index = read_dicomdir(data, "CD/DICOMDIR", max_records=1000)
    event(f"DICOMDIR reader: {index.reader or 'none'}, readable: {index.readable}")
    assert len(index.records) <= 1000 and index.reader in ("fast", "pydicom", "" if not data
                                                           else "pydicom")
    for record in index.records:
        parts = record.file_id.split("/")
        assert parts[0] == "CD" and all(p not in ("", ".", "..") for p in parts)
        assert "\\" not in record.file_id and "\0" not in record.file_id
    if not index.readable:
        assert index.problems
    if index.reader == "fast" and len(data) <= PYDICOM_MAX_BYTES:
        slow = read_dicomdir(data, "CD/DICOMDIR", max_records=1000, use_pydicom=True)
        assert (index.records, index.problems, index.readable) == (
            slow.records, slow.problems, slow.readable)


@BYTES
@given(data=mutated("dicomdir"))
def test_mutated_dicomdirs_never_crash_or_hang_and_both_readers_agree(data: bytes) -> None:
    with bounded(BYTES_SECONDS):
        _check_dicomdir_bytes(data)


# --- (c) directory trees ------------------------------------------------------------------------

_WEIRD_NAMES = ["...", ". .", "..\\..", "\\", " ", "-rf", "\n", "CON", "a" * 255, "DICOMDIR",
                "dicomdir", "DıCOMDIR", "IM 0001.dcm", "%s%n", "$(reboot)", "*", "~",
                "王小东.dcm", "\u202eevil", "\ufeffBOM", "e\u0301"]
_NAME = st.one_of(
    st.sampled_from(_WEIRD_NAMES),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
            min_size=1, max_size=16),
    # Names that are not UTF-8 (GBK discs, damage); "/" and NUL cannot be in a name.
    st.binary(min_size=1, max_size=16).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_")),
).filter(lambda n: n not in (".", "..", b".", b".."))

_CONTENT = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    st.deferred(lambda: st.sampled_from(dicom_seeds())),
    mutated("dicom"),
    st.deferred(lambda: st.sampled_from(dicomdir_seeds())),
)
_LEAF = st.one_of(
    st.tuples(st.just("file"), _CONTENT),
    st.tuples(st.just("link"), st.sampled_from(
        ["/etc/passwd", "../OUTSIDE/secret.dcm", "../../OUTSIDE", "..", ".", "self", "nowhere",
         "/dev/zero", "/proc/self/mem", "/"])),
    st.tuples(st.just("fifo"), st.just(None)),
    st.tuples(st.just("chain"), st.integers(1, 40)),  # folders deeper than the limit
)
_TREE = st.recursive(_LEAF, lambda children: st.dictionaries(_NAME, children, max_size=5)
                     .map(lambda d: ("dir", d)), max_leaves=25)


def _build(folder: bytes, node: tuple[str, Any], name: bytes) -> None:
    kind, value = node
    path = os.path.join(folder, name)
    if os.path.lexists(path):
        return  # two generated names that are the same bytes
    if kind == "dir":
        os.mkdir(path)
        for child, sub in value.items():
            _build(path, sub, child.encode() if isinstance(child, str) else child)
    elif kind == "file":
        with open(path, "wb") as fh:
            fh.write(value)
    elif kind == "link":
        os.symlink(name if value == "self" else value.encode(), path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # a chain of folders with a DICOM file at the bottom
        for _ in range(value):
            path = os.path.join(path, b"d")
        os.makedirs(path)
        with open(os.path.join(path, b"IM"), "wb") as fh:
            fh.write(dicom_seeds()[0])


def _expected(root: Path, max_depth: int) -> list[tuple[str, bool]]:
    """The medium's entries as the limits let them be seen, by an independent walk.

    ``(path, is a regular file)``, depth first and sorted like every source lists them (by
    the ``str`` name, undecodable bytes as surrogates: not the order of the raw bytes).
    """
    out: list[tuple[str, bool]] = []

    def walk(folder: str, rel: str, depth: int) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            path = rel + entry.name
            if entry.is_dir(follow_symlinks=False):
                if depth >= max_depth:
                    out.append((path, False))
                else:
                    walk(entry.path, path + "/", depth + 1)
            else:
                out.append((path, entry.is_file(follow_symlinks=False)))

    walk(str(root), "", 0)
    return out


def _snapshot(root: Path) -> dict[bytes, tuple[int, int, str]]:
    """Every entry under ``root``: mode, size and content hash (of regular files)."""
    shot = {}
    for folder, dirs, files in os.walk(os.fsencode(root)):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st_ = os.lstat(path)
            digest = ""
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            shot[path] = (st_.st_mode, st_.st_size, digest)
    return shot


def _check_report(report: dict[str, Any], paths: list[str], dicomdirs: int,
                  limits: ScanLimits) -> None:
    """``paths``: every entry of the medium the scan may see (depth limit applied)."""
    json.dumps(report, ensure_ascii=False).encode("utf-8")  # what `kiosk import --json` prints
    inst = report["instances"]
    entries = len(paths)
    accounted = inst["found"] + len(report["rejected"]) + len(report["ignored"]) + dicomdirs
    listed = [r["path"] for r in report["rejected"] + report["ignored"]]
    shown = [display_path(p) for p in paths]
    assert set(listed) <= set(shown)
    if len(set(shown)) == len(shown):  # a UTF-8 and a GBK name can show the same
        assert len(listed) == len(set(listed)), "an entry reported twice"
    if report["limits"]["stopped"] == "max_files":
        assert entries > limits.max_files and accounted == limits.max_files
    else:
        assert report["limits"]["stopped"] is None and report["complete"] is True
        assert accounted == entries, (accounted, entries)
    assert import_exit_code(report) in (0, 3, 4)
    if report["complete"] and inst["found"]:
        assert inst["verified"] + len(report["verification"]["problems"]) >= inst["found"]


def _is_dicomdir_name(path: str) -> bool:
    return path.rpartition("/")[2].upper() == "DICOMDIR"


@TREES
@given(tree=st.dictionaries(_NAME, _TREE, min_size=1, max_size=8),
       max_files=st.sampled_from([6, 100_000]), as_iso=st.booleans())
def test_random_trees_import_with_every_entry_accounted_for_and_nothing_written_outside(
        tree: dict[Any, tuple[str, Any]], max_files: int, as_iso: bool) -> None:
    if as_iso and shutil.which("xorriso") is None:
        as_iso = False
    with tempfile.TemporaryDirectory(prefix="kiosk-fuzz-tree-") as tmp, bounded(TREE_SECONDS):
        base = Path(tmp)
        medium, outside = base / "MEDIUM", base / "OUTSIDE"
        medium.mkdir()
        outside.mkdir()
        secret = dicom_seeds()[1]
        (outside / "secret.dcm").write_bytes(secret)
        for name, node in tree.items():
            _build(os.fsencode(medium), node, name.encode() if isinstance(name, str) else name)
        limits = ScanLimits(max_files=max_files, max_depth=5)
        service = build_service(data_dir=base / "data", env={})
        service.importer.options = dataclasses.replace(service.importer.options, limits=limits)
        spec: Path = medium
        if as_iso:
            spec = base / "medium.iso"
            made = subprocess.run(["xorriso", "-as", "mkisofs", "-R", "-J", "-joliet-long",
                                   "-quiet", "-o", str(spec), str(medium)],
                                  capture_output=True, timeout=60, check=False)
            if made.returncode != 0:
                spec = medium  # a tree xorriso refuses: import the folder instead
        before = _snapshot(base)

        report = service.import_path(spec)

        if spec == medium:
            expected = _expected(medium, limits.max_depth)
        else:
            with IsoSource(spec) as iso:
                expected = [(e.path, e.kind is EntryKind.FILE)
                            for e in iso.entries(limits.max_depth)]
        # Regular files named DICOMDIR are read as the index, not listed as files.
        dicomdirs = sum(1 for path, is_file in expected[:limits.max_files]
                        if is_file and _is_dicomdir_name(path))
        _check_report(report, [p for p, _ in expected], dicomdirs, limits)
        event(f"tree: {'iso' if spec != medium else 'folder'}, stopped: "
              f"{report['limits']['stopped']}, too deep: {bool(report['limits']['too_deep'])}, "
              f"imported: {bool(report['instances']['found'])}")
        # The medium and everything beside it are untouched; only the data dir is new.
        data_dir = os.fsencode(base / "data")
        outside_data = {p: v for p, v in _snapshot(base).items() if not p.startswith(data_dir)}
        assert outside_data == {p: v for p, v in before.items() if not p.startswith(data_dir)}
        # Nothing reached through a symlink was imported.
        assert not service.store.has(hashlib.sha256(secret).hexdigest()) or any(
            c == secret for c in _regular_files(medium))


def _regular_files(root: Path) -> Iterator[bytes]:
    for folder, _dirs, files in os.walk(os.fsencode(root)):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    yield fh.read()


# --- (d) ISO images -----------------------------------------------------------------------------

@functools.cache
def iso_seeds() -> tuple[bytes, ...]:
    """Small real disc images: the sample disc with Rock Ridge + Joliet, and plain ISO9660."""
    if shutil.which("xorriso") is None:
        return ()
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        for rel in ("DICOMDIR", "PT000000/ST000000/SE000000/IM000000",
                    "PT000000/ST000000/SE000000/IM000001"):
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(sample_disc() / rel, tree / rel)
        (tree / "LINK").symlink_to("/etc/passwd")
        for flags in (["-R", "-J"], []):
            out = Path(tmp) / "disc.iso"
            subprocess.run(["xorriso", "-as", "mkisofs", *flags, "-quiet", "-o", str(out),
                            str(tree)], check=True, capture_output=True, timeout=60)
            images.append(out.read_bytes())
    return tuple(images)


@st.composite
def mutated_iso(draw: st.DrawFn) -> bytes:
    """A disc image with bytes changed where the file system lives (sectors 16 to ~40)."""
    seeds = iso_seeds()
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(16 * 2048, min(len(data), 48 * 2048) - 8))
        if draw(st.booleans()):
            data[at] ^= draw(st.integers(1, 255))
        else:
            struct.pack_into("<L", data, at, draw(st.sampled_from(_HUGE)) & 0xFFFFFFFF)
    if draw(st.integers(0, 9)) == 0:
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


@TREES
@given(image=st.deferred(mutated_iso))
def test_mutated_disc_images_are_refused_or_imported_never_crash_or_hang(image: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="kiosk-fuzz-iso-") as tmp, bounded(TREE_SECONDS):
        path = Path(tmp) / "disc.iso"
        path.write_bytes(image)
        try:
            source = IsoSource(path)
        except KioskError as exc:
            assert exc.text
            event("disc image refused")
            return
        event("disc image opened")
        with source:
            entries = list(source.entries(5))
            service = build_service(data_dir=Path(tmp) / "data", env={})
            service.importer.options = dataclasses.replace(
                service.importer.options, limits=ScanLimits(max_depth=5))
            report = service.import_source(source)
        dicomdirs = sum(1 for e in entries if e.kind is EntryKind.FILE
                        and _is_dicomdir_name(e.path))
        _check_report(report, [e.path for e in entries], dicomdirs, ScanLimits())
        assert path.read_bytes() == image


def test_the_fuzz_seeds_are_there() -> None:
    # An empty seed list would make every run above trivially green.
    assert len(dicom_seeds()) >= 15 and len(dicomdir_seeds()) >= 6
    assert shutil.which("xorriso") is None or len(iso_seeds()) == 2
