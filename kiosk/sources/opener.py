"""Open the right :class:`~kiosk.sources.source.Source` for what the coordinator names."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.errors import SourceError
from kiosk.sources.directory import DirectorySource

#: Where an ISO9660 disc's first volume descriptor is (sector 16 of 2048 bytes).
_ISO9660_DESCRIPTOR = 16 * 2048

if TYPE_CHECKING:
    from kiosk.sources.scan_limits import ScanLimits
    from kiosk.sources.source import Source


def open_source(spec: str | os.PathLike[str], limits: ScanLimits | None = None) -> Source:
    """Return the right :class:`Source` for a directory, disc image or block device.

    A disc image or device is read without mounting it: by :class:`~kiosk.sources.iso.IsoSource`
    when it has an ISO9660 volume descriptor (ISO9660 discs, and UDF bridge discs, which carry
    both), by :class:`~kiosk.sources.udf.UdfSource` when it has only a UDF volume recognition
    sequence (UDF-only discs, as Windows and many PACS burn them). ``limits`` bound the
    directory tree a disc may hold before it is indexed (default: the default limits); a
    directory is listed lazily and needs none here.

    Raises
    ------
    SourceError
        If ``spec`` does not exist or is none of those (a file that is neither ISO9660 nor
        UDF is refused by IsoSource's "not an ISO9660 disc image" message), or
        (``DiscTreeLimitError``) a disc's tree is past ``limits``.
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
        return open_disc(path, limits)
    raise SourceError(f"{path} is not a directory, an ISO image or a block device.")


def open_disc(path: Path | str, limits: ScanLimits | None = None) -> Source:
    """Open a disc image or block device without mounting it: ISO9660 first, else UDF.

    Raises
    ------
    SourceError
        It cannot be opened, or holds neither file system (``DiscTreeLimitError``: its tree
        is past ``limits``; ``UdfUnsupportedError``: a UDF feature the kiosk cannot read).
    """
    if udf_only(path):
        from kiosk.sources.udf import UdfSource

        return UdfSource(path, limits)
    from kiosk.sources.iso import IsoSource  # pycdlib is only loaded when an image is read

    return IsoSource(path, limits)


def udf_only(path: Path | str) -> bool:
    """Whether the image or device has a UDF volume recognition sequence and no ISO9660.

    Anything that cannot be read answers False: IsoSource then says what is wrong.
    """
    from kiosk.sources.udf import is_udf

    try:
        # O_NONBLOCK: opening a CD drive with its tray open must not close the tray.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.pread(fd, 6, _ISO9660_DESCRIPTOR)[1:6] != b"CD001" and is_udf(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
