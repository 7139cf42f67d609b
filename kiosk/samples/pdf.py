"""Minimal PDF files: the hospital report on the sample disc and report stand-ins in tests.

`minimal_pdf` writes a one-page PDF 1.4 with exact cross-reference offsets,
byte-for-byte deterministic (no dates), without any PDF library.
"""

from __future__ import annotations

__all__ = ["minimal_pdf"]


def _pdf_escape(text: str) -> bytes:
    """Encode `text` as the inside of a PDF literal string (WinAnsi subset)."""
    raw = text.encode("latin-1", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def minimal_pdf(text_lines: list[str]) -> bytes:
    """Return a small, structurally valid PDF 1.4 showing `text_lines`.

    One A4 page, Helvetica 11 pt, one line per entry. The cross-reference
    table holds exact byte offsets, so strict readers (pdftotext, Ghostscript)
    open it without repair. Output is deterministic (no dates).

    Parameters
    ----------
    text_lines : list of str
        Lines of text. Characters outside Latin-1 are replaced by ``?``: the
        standard fonts cannot show CJK, and hospital reports in Chinese are
        stand-ins here, not the product's translated reports.

    Returns
    -------
    bytes
        The PDF file, starting with ``%PDF-1.4`` and ending with ``%%EOF``.
    """
    content = bytearray(b"BT\n/F1 11 Tf\n14 TL\n56 790 Td\n")
    for line in text_lines:
        content += b"(" + _pdf_escape(line) + b") Tj T*\n"
    content += b"ET\n"

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
        b"/Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + bytes(content) + b"endstream",
        b"<< /Producer (MedPass Kiosk sample disc) /Title (Radiology report) >>",
    ]
    # The binary comment tells transfer tools the file is not plain text.
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"  # each entry is exactly 20 bytes
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += (
        b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF"
        % (len(objects) + 1, len(objects), xref_at)
    )
    return bytes(out)
