"""``kiosk doctor``: what works on this machine and what does not, each with a fix.

Each check returns a :class:`Check`. *Essential* checks are the ones without which the kiosk
cannot do its job at the desk (see media, mount them, store what it copies); the others
(optical drive, printer, cloud) only limit it: a kiosk without a DVD drive still takes sticks,
an offline kiosk still exports. ``kiosk doctor`` exits 0 when every essential check passes.

The probes are parameters with real defaults, so each check is unit-tested without the
hardware or the network.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.store.locations import Locations

#: Below this much free space in the data directory the kiosk cannot take a full DVD (4.7 GB).
MIN_FREE_BYTES = 5 << 30
#: Below this, warn: a few more discs and the store is full.
LOW_FREE_BYTES = 20 << 30


class Status(StrEnum):
    """Outcome of one check."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    essential: bool = True

    @property
    def failed(self) -> bool:
        """An essential check that did not pass."""
        return self.essential and self.status is Status.FAIL


def check_udev(status: Callable[[], tuple[bool, str]] | None = None) -> Check:
    """udevd is running, so inserted media are seen."""
    if status is None:
        from kiosk.media.udev_monitor import udevd_status

        status = udevd_status
    ok, detail = status()
    if ok:
        return Check("udev", Status.OK, detail)
    return Check("udev", Status.FAIL, detail,
                 "start udevd (`systemctl start systemd-udevd`; in a container or CI: "
                 "`/lib/systemd/systemd-udevd --daemon && udevadm trigger --action=add`)")


def check_mount(euid: int | None = None, helper: str | None = None,
                run: Callable[[list[str]], int] | None = None,
                which: Callable[[str], str | None] = shutil.which,
                socket_path: Path | None = None,
                access: Callable[[Path, int], bool] = os.access) -> Check:
    """The kiosk may mount media: it is root, the mount helper service lets it in (the
    appliance), or ``sudo`` lets it run the mount helper."""
    from kiosk.media.mounter import HELPER_SOCKET, helper_path

    euid = os.geteuid() if euid is None else euid
    for tool in ("mount", "umount"):
        if which(tool) is None:
            return Check("mount", Status.FAIL, f"{tool} is not installed",
                         "apt-get install mount")
    if euid == 0:
        return Check("mount", Status.OK, "running as root: media are mounted directly")
    socket_path = socket_path or HELPER_SOCKET
    if socket_path.exists():
        if access(socket_path, os.R_OK | os.W_OK):
            return Check("mount", Status.OK, f"the mount helper service listens at {socket_path}")
        return Check("mount", Status.FAIL, f"{_user_name()} may not connect to {socket_path}",
                     "the socket belongs to group kiosk (kiosk-mount-helper.socket): run the "
                     "desk as the kiosk user")
    helper = helper or helper_path()
    if not Path(helper).exists():
        return Check("mount", Status.FAIL, f"the mount helper {helper} is missing",
                     "reinstall the kiosk package (it provides kiosk-mount-helper)")
    if which("sudo") is None:
        return Check("mount", Status.FAIL, "sudo is not installed, so the kiosk cannot mount "
                     "sticks", "apt-get install sudo, then add the sudoers rule from the README")
    run = run or _returncode
    if run(["sudo", "-n", "-l", helper]) == 0:
        return Check("mount", Status.OK, f"sudo allows {helper}")
    user = _user_name()
    return Check("mount", Status.FAIL, f"sudo does not allow {user} to run {helper}",
                 f"add `{user} ALL=(root) NOPASSWD: {helper}` to /etc/sudoers.d/medpass-kiosk")


def check_tools(which: Callable[[str], str | None] = shutil.which) -> Check:
    """Helpers used at the desk: mtools (looking at FAT sticks) and eject."""
    missing = [t for t in ("mdir", "mtype", "eject") if which(t) is None]
    if not missing:
        return Check("tools", Status.OK, "mtools and eject are installed", essential=False)
    packages = sorted({"mtools" if t.startswith("m") else "eject" for t in missing})
    return Check("tools", Status.WARN, f"missing: {', '.join(missing)} (FAT sticks get no role "
                 "until mounted; discs cannot be ejected by the kiosk)",
                 f"apt-get install {' '.join(packages)}", essential=False)


def check_optical(drives: Callable[[], list[tuple[str, str]]] | None = None) -> Check:
    """An optical drive is attached (hospital CDs/DVDs) and readable by this user."""
    if drives is None:
        from kiosk.media.udev_monitor import optical_drives

        drives = optical_drives
    try:
        found = drives()
    except (KioskError, OSError) as exc:
        return Check("optical", Status.WARN, f"cannot list drives: {exc}",
                     "run `kiosk doctor` again once udev works", essential=False)
    if not found:
        return Check("optical", Status.WARN, "no optical drive found: discs cannot be read",
                     "connect a USB DVD drive (sticks work without one)", essential=False)
    unreadable = [node for node, _model in found if not os.access(node, os.R_OK)]
    listing = ", ".join(f"{node} ({model})" for node, model in found)
    if unreadable:
        return Check("optical", Status.WARN, f"{listing}; not readable by this user: "
                     f"{', '.join(unreadable)}", "add the kiosk user to the cdrom group",
                     essential=False)
    return Check("optical", Status.OK, listing, essential=False)


def check_printer(config: Config, find: Callable[[int, int], object] | None = None) -> Check:
    """The receipt printer, when one is configured."""
    if not config.printer.enabled:
        return Check("printer", Status.SKIP, "no printer configured (printer.enabled = false)",
                     essential=False)
    try:
        if find is None:
            from kiosk.links.printer import find_usb_printer

            find = find_usb_printer
        found = find(config.printer.vendor_id, config.printer.product_id)
    except (KioskError, ImportError, OSError, ValueError) as exc:
        text = exc.text if isinstance(exc, KioskError) else str(exc)
        return Check("printer", Status.WARN, f"not found: {text}",
                     "plug in the ESC/POS receipt printer, or set printer.enabled = false; "
                     "slips are optional", essential=False)
    return Check("printer", Status.OK, f"receipt printer {found}", essential=False)


def check_space(locations: Locations,
                usage: Callable[[Path], tuple[int, int, int]] | None = None) -> Check:
    """Free space in the data directory (where imported images are stored)."""
    path = locations.data_dir
    while not path.exists() and path != path.parent:
        path = path.parent  # not created yet: the disk it will be on
    total, _used, free = (usage or shutil.disk_usage)(path)
    gib = free / (1 << 30)
    detail = f"{gib:.1f} GiB free of {total / (1 << 30):.1f} GiB in {locations.data_dir}"
    fix = "purge delivered cases, or move the data directory (--data-dir) to a larger disk"
    if free < MIN_FREE_BYTES:
        return Check("space", Status.FAIL, detail + " (a full DVD needs 4.7 GB)", fix)
    if free < LOW_FREE_BYTES:
        return Check("space", Status.WARN, detail + " (getting low)", fix, essential=False)
    return Check("space", Status.OK, detail)


def check_cloud(config: Config, timeout: float = 3.0,
                opener: Callable[[urllib.request.Request, float], int] | None = None) -> Check:
    """The office's DICOMweb server answers (offline is allowed: uploads wait in the outbox)."""
    url = config.cloud.url
    if not url:
        return Check("cloud", Status.SKIP, "no cloud configured (cloud.url is empty): "
                     "offline only", essential=False)
    request = urllib.request.Request(url.rstrip("/") + "/", method="GET")
    if config.cloud.token:
        request.add_header("Authorization", f"Bearer {config.cloud.token}")
    elif config.cloud.user:
        pair = f"{config.cloud.user}:{config.cloud.password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    try:
        status = (opener or _http_status)(request, timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("cloud", Status.WARN, f"{url} is not reachable: {reason}",
                     "check the network and cloud.url; uploads wait in the outbox meanwhile",
                     essential=False)
    if status in (401, 403):
        return Check("cloud", Status.WARN, f"{url} answers but refuses the credentials "
                     f"(HTTP {status})", "check cloud.user/cloud.password or cloud.token",
                     essential=False)
    return Check("cloud", Status.OK, f"{url} answers (HTTP {status})", essential=False)


def run_checks(config: Config, locations: Locations) -> list[Check]:
    """Every check, in the order the report shows them."""
    return [check_udev(), check_mount(), check_tools(), check_optical(),
            check_printer(config), check_space(locations), check_cloud(config)]


def _http_status(request: urllib.request.Request, timeout: float) -> int:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:  # an HTTP answer of any kind: the server is there
        return int(exc.code)


def _returncode(argv: list[str]) -> int:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 1


def _user_name() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
