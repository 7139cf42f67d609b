"""``kiosk package verify``: check a package on a stick against its signed manifest.

What the page on the stick does in the browser, from the command line: the archive is
decrypted entry by entry (every HMAC checked), ``MANIFEST.JWS`` is checked against
``MANIFEST.JSON`` (the signature check is handed in: the links room owns the keys), and every
file the manifest lists, inside the archive and beside it, must be there with its SHA-256 and
size. Every file that does not match is named; nothing stops at the first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kiosk.errors import KioskError, UsageError
from kiosk.package.aeszip import ArchiveCorruptError, WrongPassphraseError, check_archive
from kiosk.package.export import ARCHIVE_BASENAME

MANIFEST, SIGNATURE = "MANIFEST.JSON", "MANIFEST.JWS"
_PART = re.compile(re.escape(ARCHIVE_BASENAME) + r"\.zip\.(\d{3})")


class Verdict(Protocol):
    """What a signature check says (the links room's SignatureCheck)."""

    @property
    def fingerprint(self) -> str | None:
        """Fingerprint of the key that signed, when one could be read."""

    @property
    def pinned(self) -> bool:
        """Checked against a key the caller trusts."""

    @property
    def problem(self) -> str | None:
        """Why the signature does not hold; None when it does."""


#: Checks ``MANIFEST.JWS`` (first argument) against the bytes of ``MANIFEST.JSON``.
SignatureChecker = Callable[[bytes, bytes], Verdict]


class WrongPackagePassphrase(KioskError):
    """The passphrase given does not open the package's archive."""

    default_title = "Wrong passphrase"
    exit_code = 2


@dataclass
class PackageCheck:
    """The outcome of checking one package folder."""

    folder: str
    encrypted: bool
    files_checked: int = 0
    fingerprint: str | None = None
    pinned: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    #: The archive could not be read as a whole: no file-by-file check was possible.
    unreadable: bool = False

    @property
    def ok(self) -> bool:
        """True when the signature holds and every file matches."""
        return not self.problems

    def problem(self, path: str, text: str) -> None:
        """Record that ``path`` does not match (``text`` says how)."""
        self.problems.append({"path": path, "problem": text})

    def counts(self) -> dict[str, int]:
        """Images, original reports and translations the manifest lists."""
        files = self.manifest.get("files", [])
        reports = self.manifest.get("reports", [])
        return {
            "images": sum(1 for f in files if f.get("kind") == "dicom"
                          and not f.get("report_id")),
            "originals": sum(1 for r in reports if r.get("role") == "original"),
            "translations": sum(1 for r in reports if r.get("role") == "translation"),
        }

    def to_json(self) -> dict[str, Any]:
        """The report ``kiosk package verify --json`` prints."""
        return {
            "folder": self.folder, "ok": self.ok, "encrypted": self.encrypted,
            "case_id": self.manifest.get("case_id"), "kiosk_id": self.manifest.get("kiosk_id"),
            "created": self.manifest.get("created"), "fingerprint": self.fingerprint,
            "key_pinned": self.pinned, "files_checked": self.files_checked, **self.counts(),
            "problems": self.problems,
        }


def archive_volumes(folder: Path) -> list[Path]:
    """The archive's volumes in order: ``[IMAGES.zip]`` or ``[IMAGES.zip.001, …]``.

    Raises
    ------
    ArchiveCorruptError
        A part of a split archive is missing (named).
    """
    whole = folder / f"{ARCHIVE_BASENAME}.zip"
    parts = sorted((int(m.group(1)), p) for p in folder.iterdir()
                   if (m := _PART.fullmatch(p.name)))
    if not parts:
        return [whole] if whole.is_file() else []
    missing = [f"{ARCHIVE_BASENAME}.zip.{n:03d}" for n in range(1, parts[-1][0] + 1)
               if n not in {k for k, _ in parts}]
    if missing:
        raise ArchiveCorruptError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
                                  " missing: keep every part of the archive in the folder.")
    return [p for _, p in parts]


def verify_package(folder: Path, *, passphrase: str | None,
                   check_signature: SignatureChecker) -> PackageCheck:
    """Check the package in ``folder`` (see the module's docstring).

    Raises
    ------
    UsageError
        ``folder`` is not a package, or it is encrypted and no passphrase was given.
    WrongPackagePassphrase
        The passphrase does not open the archive.
    """
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder. Give the package's folder "
                         "(MEDPASS_<case>_<date> on the stick).")
    try:
        volumes = archive_volumes(folder)
    except ArchiveCorruptError as exc:
        result = PackageCheck(str(folder), encrypted=True)
        result.problem(f"{ARCHIVE_BASENAME}.zip", str(exc))
        return result
    if volumes:
        if passphrase is None:
            raise UsageError("This package is encrypted: give its passphrase with --passphrase "
                             "(it is printed on the patient's slip).")
        result = PackageCheck(str(folder), encrypted=True)
        found, kept = _check_archive(volumes, passphrase, result)
    elif (folder / MANIFEST).is_file():
        result = PackageCheck(str(folder), encrypted=False)
        found, kept = _read_plain(folder)
    else:
        raise UsageError(f"{folder} holds no MedPass package (no {ARCHIVE_BASENAME}.zip and no "
                         f"{MANIFEST}).")
    if not result.unreadable:
        _check_against_manifest(folder, result, found, kept, check_signature)
    return result


def _check_archive(volumes: list[Path], passphrase: str,
                   result: PackageCheck) -> tuple[dict[str, tuple[int, str | None]],
                                                  dict[str, bytes]]:
    found: dict[str, tuple[int, str | None]] = {}
    kept: dict[str, bytes] = {}
    try:
        for entry in check_archive(volumes, passphrase, keep={MANIFEST, SIGNATURE}):
            found[entry.name] = (entry.size, entry.sha256)
            if entry.problem is not None:
                result.problem(entry.name, entry.problem)
            if entry.data is not None:
                kept[entry.name] = entry.data
    except WrongPassphraseError:
        raise WrongPackagePassphrase(
            "The passphrase does not open this package's archive. Type it exactly as printed "
            "on the slip, with the dashes.") from None
    except ArchiveCorruptError as exc:
        text = f"the archive cannot be read: {exc}"
        if _PART.fullmatch(volumes[-1].name):
            # The end records are in the last part: without them nothing names it missing.
            text += f" (the part after {volumes[-1].name} may be missing)"
        result.problem(volumes[0].name if len(volumes) == 1 else f"{ARCHIVE_BASENAME}.zip.*",
                       text)
        result.unreadable = True
    except OSError as exc:
        result.problem(f"{ARCHIVE_BASENAME}.zip",
                       f"the archive cannot be read ({exc.strerror or exc})")
        result.unreadable = True
    return found, kept


def _read_plain(folder: Path) -> tuple[dict[str, tuple[int, str | None]], dict[str, bytes]]:
    found: dict[str, tuple[int, str | None]] = {}
    kept: dict[str, bytes] = {}
    for name in (MANIFEST, SIGNATURE):
        with contextlib.suppress(OSError):
            kept[name] = (folder / name).read_bytes()
    return found, kept


def _sha_file(path: Path) -> tuple[int, str] | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return path.stat().st_size, h.hexdigest()


def _check_against_manifest(folder: Path, result: PackageCheck,
                            found: dict[str, tuple[int, str | None]], kept: dict[str, bytes],
                            check_signature: SignatureChecker) -> None:
    raw = kept.get(MANIFEST)
    if raw is None:
        if MANIFEST not in found or found[MANIFEST][1] is not None:
            result.problem(MANIFEST, "missing: there is nothing to check the files against")
        return
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
            raise ValueError("no file list")
    except ValueError as exc:
        result.problem(MANIFEST, f"not a package manifest ({exc})")
        return
    result.manifest = manifest
    jws = kept.get(SIGNATURE)
    if jws is None:
        if SIGNATURE not in found or found[SIGNATURE][1] is not None:
            result.problem(SIGNATURE, "missing: the package is not signed")
    else:
        verdict = check_signature(jws, raw)
        result.fingerprint, result.pinned = verdict.fingerprint, verdict.pinned
        if verdict.problem:
            result.problem(SIGNATURE, verdict.problem)
    listed: set[str] = set()
    for entry in manifest["files"]:
        path = str(entry.get("path", ""))
        listed.add(path)
        got = found.get(path) if result.encrypted else _sha_file(folder / path)
        _compare(result, path, entry, got)
    for entry in manifest.get("beside", []):
        path = str(entry.get("path", ""))
        _compare(result, path, entry, _sha_file(folder / path))
    if result.encrypted:
        for name in found:
            if name not in listed and name not in (MANIFEST, SIGNATURE):
                result.problem(name, "in the archive but not listed in the manifest")


def _compare(result: PackageCheck, path: str, entry: dict[str, Any],
             got: tuple[int, str | None] | None) -> None:
    if got is None:
        result.problem(path, "missing")
        return
    result.files_checked += 1
    size, sha = got
    if sha is None:
        return  # the archive's own check already named it
    if sha != entry.get("sha256") or size != entry.get("size"):
        result.problem(path, "changed since the kiosk signed the manifest (SHA-256 differs)")
