"""Where a file's data lies on its block device, as the file system reports it (FIEMAP).

Used to read a mounted medium in physical order (a disc or a slow stick seeks; see
:func:`kiosk.ingest.importer.disc_order`). Linux's ``FS_IOC_FIEMAP`` works without privileges
on a descriptor opened for reading; file systems that do not map blocks (tmpfs, FUSE, NFS)
refuse it, and the caller then stops asking.
"""

from __future__ import annotations

import errno
import fcntl
import struct

#: ``_IOWR('f', 11, struct fiemap)`` from linux/fs.h.
FS_IOC_FIEMAP = 0xC020660B
#: struct fiemap: fm_start, fm_length, fm_flags, fm_mapped_extents, fm_extent_count, fm_reserved.
_HEADER = struct.Struct("=QQIIII")
#: struct fiemap_extent: fe_logical, fe_physical, fe_length, 2 reserved, fe_flags, 3 reserved.
_EXTENT = struct.Struct("=QQQQQIIII")
#: The extent's location is not known yet (delayed allocation) or is not a block address.
_NO_ADDRESS = 0x2 | 0x4 | 0x8 | 0x100 | 0x200  # UNKNOWN, DELALLOC, ENCODED, NOT_ALIGNED, INLINE
#: errno values that mean "this file system does not map blocks": stop asking it.
UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS})


def first_block_offset(fd: int) -> int | None:
    """Byte offset on the device of the first data of the file open at ``fd``, or None.

    None for an empty file, or data without a block address (inline, not yet allocated).

    Raises
    ------
    OSError
        The ioctl failed; ``errno`` in :data:`UNSUPPORTED` means the file system cannot say.
    """
    request = bytearray(_HEADER.size + _EXTENT.size)
    _HEADER.pack_into(request, 0, 0, 0xFFFFFFFFFFFFFFFF, 0, 0, 1, 0)
    fcntl.ioctl(fd, FS_IOC_FIEMAP, request)
    mapped = _HEADER.unpack_from(request, 0)[3]
    if mapped == 0:
        return None
    extent = _EXTENT.unpack_from(request, _HEADER.size)
    physical, flags = extent[1], extent[5]
    return None if flags & _NO_ADDRESS else int(physical)
