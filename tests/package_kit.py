"""Real patient packages for tests: exports of the sample disc made by the kiosk, and what a
tamperer could do to one (re-encrypt it with the slip's passphrase after editing entries,
flip a byte of one entry's ciphertext)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.package.aeszip import AesZipWriter, check_archive
from kiosk.samples.pdf import minimal_pdf
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.service import KioskService


@dataclass(frozen=True)
class Package:
    """One export on a directory standing in for the stick."""

    folder: Path
    passphrase: str
    case_id: str

    def volumes(self) -> list[Path]:
        """IMAGES.zip, or its parts in order."""
        parts = sorted(self.folder.glob("IMAGES.zip.*"))
        return parts or [self.folder / "IMAGES.zip"]

    def entries(self) -> dict[str, bytes]:
        """Every entry's plaintext (the archive checked as it is read)."""
        names = [e.name for e in check_archive(self.volumes(), self.passphrase)]
        return {e.name: e.data or b"" for e in check_archive(self.volumes(), self.passphrase,
                                                             keep=set(names))}


def export_sample(service: KioskService, tmp: Path, *, ct_slices: int = 4, size: int = 64,
                  reports: bool = False, **export: object) -> Package:
    """Import the sample hospital disc into ``service`` and export the case into ``tmp``;
    with ``reports``, a Chinese original and its certified English translation first."""
    disc = build_sample_disc(tmp / "disc", ct_slices=ct_slices, size=size)
    case = str(service.import_path(disc.root)["case_id"])
    if reports:
        for lang, role, text in (("zh", "original", "CT report (zh)"),
                                 ("en", "translation", "CT report, certified translation")):
            pdf = tmp / f"{role}.pdf"
            pdf.write_bytes(minimal_pdf([text]))
            service.attach_report(case, pdf, lang, role, certified=role == "translation",
                                  translator="Wang Fang" if role == "translation" else None)
    stick = tmp / "stick"
    stick.mkdir(exist_ok=True)
    report = service.export_case(case, stick, **export)  # type: ignore[arg-type]
    return Package(Path(report["folder"]), str(report.get("passphrase", "")), case)


def rewrite(package: Package, change: Callable[[dict[str, bytes]], None]) -> None:
    """Re-encrypt IMAGES.zip with the same passphrase after ``change`` edits its entries."""
    data = package.entries()
    change(data)
    for volume in package.volumes():
        volume.unlink()
    with AesZipWriter(package.folder, "IMAGES", package.passphrase) as writer:
        for name, raw in data.items():
            writer.add_file(name, io.BytesIO(raw))


def edit_manifest(package: Package, **fields: object) -> None:
    """Change fields of MANIFEST.JSON (its signature then no longer matches) and re-encrypt."""

    def change(data: dict[str, bytes]) -> None:
        manifest = json.loads(data["MANIFEST.JSON"])
        manifest.update(fields)
        data["MANIFEST.JSON"] = json.dumps(manifest).encode()

    rewrite(package, change)


def flip_ciphertext_byte(archive: Path, startswith: str = "PT", at: int = 200) -> str:
    """Flip one bit inside the ciphertext of the first entry named ``startswith…``; its name."""
    with zipfile.ZipFile(archive) as zf:
        info = next(i for i in zf.infolist() if i.filename.startswith(startswith))
    raw = bytearray(archive.read_bytes())
    head = info.header_offset
    name_len = int.from_bytes(raw[head + 26:head + 28], "little")
    extra_len = int.from_bytes(raw[head + 28:head + 30], "little")
    data = head + 30 + name_len + extra_len + 18  # past the 16-byte salt and the verifier
    raw[data + at] ^= 0x01
    archive.write_bytes(bytes(raw))
    return info.filename
