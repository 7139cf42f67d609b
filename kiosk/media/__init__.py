"""Removable media on the desk: what a medium is, how it is detected, given a role, mounted and
ejected.

Lives here: the medium types and watcher/mounter interfaces (``medium``), the role decision
(``roles``), the policies for which block devices are ours (``policy``) and how they are mounted
(``mount_policy``), the udev watcher (``udev_monitor``, the one module that imports pyudev) and
its fake (``fake_media``), the mounter and the privileged mount helper, mtools for sticks the
kernel cannot mount here, and the desk's view of what is inserted (``desk``).

May import: :mod:`kiosk.sources`, :mod:`kiosk.dicom`, :mod:`kiosk.system`, config and errors.
"""
