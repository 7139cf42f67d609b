"""Text drawn into a 1-bit image, for printers that have no Chinese font (through Pillow).

The only module that imports Pillow directly. Receipt printers print raster images everywhere,
but Chinese text only when their firmware has a GB18030 font, so the slip sends its Chinese
lines as pixels by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from kiosk.errors import ConfigError

#: Fonts with Chinese glyphs that Debian packages install (fonts-droid-fallback, fonts-noto-cjk,
#: fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-uming), first found wins.
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


def find_cjk_font(configured: str = "") -> Path | None:
    """The configured font, else the first installed candidate, else None.

    Raises
    ------
    ConfigError
        ``configured`` is set but the file does not exist (``printer.cjk_font``).
    """
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"Setting 'printer.cjk_font' names {path}, which does not exist.")
        return path
    return next((Path(p) for p in CJK_FONT_CANDIDATES if Path(p).is_file()), None)


def is_cjk(char: str) -> bool:
    """Whether ``char`` is Chinese/Japanese/Korean script or full-width punctuation."""
    code = ord(char)
    return (0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFE30 <= code <= 0xFE4F
            or 0xFF00 <= code <= 0xFFEF or code >= 0x20000)


class _MixedFont:
    """CJK characters from the CJK font, the rest from Pillow's own Latin font.

    Fallback fonts such as Droid Sans Fallback carry no Latin letters; the case number, dates and
    program names on Chinese lines would print as empty boxes.
    """

    def __init__(self, cjk_path: Path, size: int) -> None:
        self.cjk = ImageFont.truetype(str(cjk_path), size)
        self.latin = ImageFont.load_default(size)

    def runs(self, text: str) -> list[tuple[Any, str]]:
        out: list[tuple[Any, str]] = []
        for char in text:
            font = self.cjk if is_cjk(char) else self.latin
            if out and out[-1][0] is font:
                out[-1] = (font, out[-1][1] + char)
            else:
                out.append((font, char))
        return out

    def length(self, text: str) -> float:
        return sum(font.getlength(run) for font, run in self.runs(text))


#: Punctuation that may not start a line (Chinese typesetting rule).
_NO_LINE_START = set("，。、：；！？）》」』,.:;!?)")


def _break_point(line: str, nxt: str) -> int:
    """Where to cut ``line`` when ``nxt`` does not fit after it."""
    if nxt in _NO_LINE_START and len(line) > 1:
        return len(line) - 1  # carry the last character over with the punctuation
    if nxt.isascii() and nxt.isalnum() and line[-1].isascii() and line[-1].isalnum():
        # Inside a Latin word: cut after the last space or CJK character, if any.
        for i in range(len(line) - 1, 0, -1):
            if line[i] == " " or is_cjk(line[i]):
                return i + 1
    return len(line)


def _wrap(text: str, font: _MixedFont, width: int) -> list[str]:
    # Chinese has no spaces to break at: break before the character that would overflow.
    lines, line = [], ""
    for char in text:
        if line and font.length(line + char) > width:
            cut = _break_point(line, char)
            lines.append(line[:cut].rstrip())
            line = line[cut:].lstrip() + char
        else:
            line += char
    return [*lines, line]


def render_lines(lines: Sequence[str], font_path: Path, *, width: int,
                 size: int = 24) -> Any:
    """Draw ``lines`` (wrapped to ``width`` pixels) black on white; return a 1-bit PIL image.

    Parameters
    ----------
    lines : sequence of str
        Paragraphs; each is wrapped on its own.
    font_path : Path
        A TrueType/OpenType font with Chinese glyphs (Latin comes from Pillow's own font).
    width : int
        Image width in pixels (the printer's printable width in dots).
    size : int
        Font size in pixels; 24 matches the printer's own 12x24 font.
    """
    font = _MixedFont(font_path, size)
    wrapped = [w for line in lines for w in _wrap(line, font, width)]
    line_height = size + size // 4
    img = Image.new("1", (width, max(1, line_height * len(wrapped))), 1)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(wrapped):
        x = 0.0
        for run_font, run in font.runs(text):
            draw.text((x, i * line_height), run, font=run_font, fill=0)
            x += run_font.getlength(run)
    return img
