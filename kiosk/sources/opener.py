"""Open the right :class:`~kiosk.sources.source.Source` for what the coordinator names."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.errors import SourceError
from kiosk.sources.directory import DirectorySource

if TYPE_CHECKING:
    from kiosk.sources.scan_limits import ScanLimits
    from kiosk.sources.source import Source


def open_source(spec: str | os.PathLike[str], limits: ScanLimits | None = None) -> Source:
    """Return the right :class:`Source` for a directory, ``.iso`` file or block device.

    ``limits`` bound the directory tree an ISO image may hold before it is indexed (default:
    the default limits); a directory is listed lazily and needs none here.

    Raises
    ------
    SourceError
        If ``spec`` does not exist or is none of those, or (``DiscTreeLimitError``) an ISO
        image's tree is past ``limits``.
    """
    path = Path(spec)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceError(f"{path} does not exist. Check the path or insert the medium.") from None
    except OSError as exc:
        raise SourceError(f"{path} cannot be opened: {exc.strerror}.") from None
    if stat.S_ISDIR(st.st_mode):
        return DirectorySource(path)
    if stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode):
        from kiosk.sources.iso import IsoSource  # pycdlib is only loaded when an image is read

        return IsoSource(path, limits)
    raise SourceError(f"{path} is not a directory, an ISO image or a block device.")
