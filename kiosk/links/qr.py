"""QR codes for the link: terminal half-blocks, PNG files and raster images for the printer.

The only module that imports ``qrcode``. On a terminal each character cell carries two modules
(upper and lower half), so a code of N modules needs N columns and N/2 rows. Light modules are
drawn with block characters in the foreground colour and dark modules are blank cells, which is
right on the kiosk's light-on-dark console; :func:`terminal_lines` callers that cannot rely on
that add explicit colours (``kiosk qr`` does on a TTY).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import qrcode
import qrcode.constants
from qrcode.image.pil import PilImage

#: Error correction: L (7 %) on screen, where the code is pristine and must fit the terminal;
#: M (15 %) on paper and in PNGs, which get printed, folded and photographed.
SCREEN_EC, PAPER_EC = "L", "M"
#: Quiet zone in modules. Phones and zbar read 2 reliably on screen; paper keeps the standard 4.
SCREEN_BORDER, PAPER_BORDER = 2, 4

_EC = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
       "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}

# (upper is light, lower is light) -> character; light modules are drawn, dark ones are blank.
_HALF_BLOCKS = {(True, True): "\u2588", (True, False): "\u2580",
                (False, True): "\u2584", (False, False): " "}


def _code(data: str, ec: str, border: int) -> qrcode.QRCode:  # type: ignore[type-arg]
    code = qrcode.QRCode(version=None, error_correction=_EC[ec], border=border)
    code.add_data(data)
    code.make(fit=True)
    return code


def matrix(data: str, *, ec: str = SCREEN_EC, border: int = SCREEN_BORDER) -> list[list[bool]]:
    """The code as rows of modules, quiet zone included; True is dark."""
    return [list(row) for row in _code(data, ec, border).get_matrix()]


def modules(data: str, *, ec: str = PAPER_EC) -> int:
    """Modules across the code without its quiet zone (21 for version 1, +4 per version)."""
    return len(_code(data, ec, 0).get_matrix())


def terminal_lines(data: str, *, border: int = SCREEN_BORDER) -> list[str]:
    """The code as half-block text lines, light modules drawn, quiet zone included."""
    rows = matrix(data, ec=SCREEN_EC, border=border)
    if len(rows) % 2:
        rows.append([True] * len(rows[0]))  # below the code: blank, i.e. dark
    return ["".join(_HALF_BLOCKS[(not top, not bottom)] for top, bottom in zip(upper, lower,
                                                                               strict=True))
            for upper, lower in zip(rows[::2], rows[1::2], strict=True)]


def terminal_size(data: str, *, border: int = SCREEN_BORDER) -> tuple[int, int]:
    """Columns and rows :func:`terminal_lines` needs for ``data``."""
    lines = terminal_lines(data, border=border)
    return len(lines[0]), len(lines)


def image(data: str, *, box_size: int = 8, border: int = PAPER_BORDER,
          ec: str = PAPER_EC) -> Any:
    """The code as a black-and-white PIL image (``box_size`` pixels per module)."""
    code = qrcode.QRCode(version=None, error_correction=_EC[ec], box_size=box_size,
                         border=border, image_factory=PilImage)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image().get_image()


def write_png(data: str, path: Path, *, box_size: int = 8) -> None:
    """Write the code for ``data`` as a PNG file (paper error correction, 4-module border)."""
    image(data, box_size=box_size).save(path, format="PNG")


def version_of(data: str, *, ec: str = PAPER_EC) -> int:
    """The QR version (1-40) ``data`` needs at error correction ``ec`` (paper's M by default)."""
    return (modules(data, ec=ec) - 17) // 4
