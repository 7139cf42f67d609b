"""The link's QR code drawn with half-block characters, two modules per character cell.

Light modules are drawn as blocks in white on black (:func:`kiosk.links.qr.terminal_lines`), so the
code scans on any terminal theme and a ``tmux capture-pane`` of it can be rebuilt into an image.
The widget is exactly as large as the code; the screen decides whether there is room for it (a
cropped QR does not scan).
"""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from kiosk.links import qr


class QrCode(Widget):
    """A QR code of ``data``: one character per module across, two modules per cell down."""

    def __init__(self, data: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines = qr.terminal_lines(data)

    @property
    def needed(self) -> tuple[int, int]:
        """Columns and rows the code needs."""
        return len(self.lines[0]), len(self.lines)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.needed[0]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.needed[1]

    def render(self) -> Text:
        return Text("\n".join(self.lines), style="bold white on black", no_wrap=True)
