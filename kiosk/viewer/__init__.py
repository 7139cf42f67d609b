"""The stick's opener page and viewer, built from ``web/`` (JavaScript) into ``dist/``.

``web/`` holds the browser code (one viewer with pluggable sources: the stick's zip, DICOMweb)
and ``web/build.mjs``, which ``kiosk/viewer/build`` runs from pinned npm packages at install
time. This module only finds the built files; it imports nothing of the kiosk but errors.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.errors import ConfigError

DIST = Path(__file__).resolve().parent / "dist"
OPENER_NAME = "OPEN_IMAGES.html"
LICENSES_NAME = "LICENSES.TXT"


def built_file(name: str) -> Path:
    """Path of a built viewer file (``OPEN_IMAGES.html`` or ``LICENSES.TXT``).

    Raises
    ------
    ConfigError
        The viewer was not built (the install runs ``kiosk/viewer/build``).
    """
    path = DIST / name
    if not path.is_file():
        raise ConfigError(f"{name} is missing from {DIST}: this install did not build the "
                          "viewer. Run `bash kiosk/viewer/build` (the install does).")
    return path
