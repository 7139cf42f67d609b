"""Real udevd, loop devices and media images for the media tests (a pytest plugin).

Loaded from ``tests/conftest.py``. Root-only pieces skip with a reason when not root, or when
udevd or losetup are missing, so a developer laptop still passes; CI runs as root and runs all.

* ``udevd`` (session): starts ``systemd-udevd`` if it is not running (idempotent: a running
  one is used as it is and left running), installs the test-only rule
  ``tests/udev/61-medpass-test-fake-media.rules`` under a per-process name in
  ``/run/udev/rules.d``, and removes it afterwards.
* :func:`fat_image`, :func:`iso_image`, :func:`ext4_image` build images whose names carry
  ``fakeusb``/``fakecd`` (what the test rule looks for).
* :class:`Loop` attaches an image with ``losetup`` and always detaches it, and only it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_RULE = Path(__file__).parent / "udev" / "61-medpass-test-fake-media.rules"
RULES_DIR = Path("/run/udev/rules.d")
UDEVD = Path("/lib/systemd/systemd-udevd")

#: Minimum FAT32 size mkfs.vfat accepts with the default cluster size (sparse on disk).
FAT32_BYTES = 64 * 1024 * 1024


def _run(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False)


def root_media_missing() -> str | None:
    """Why the real-udev tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (loop devices, udevd, /run/udev/rules.d)"
    for tool in ("udevadm", "losetup"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install udev util-linux)"
    if not UDEVD.exists() and _run("udevadm", "control", "--ping").returncode != 0:
        return f"udevd is not running and {UDEVD} is missing (apt-get install udev)"
    return None


def need_tools(*tools: str) -> None:
    """Skip the test when one of ``tools`` is not installed."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (see .ci/install)")


@pytest.fixture(scope="session")
def udevd() -> Iterator[None]:
    """A running udevd with the test-only fake-media rule installed."""
    why = root_media_missing()
    if why:
        pytest.skip(why)
    if _run("udevadm", "control", "--ping").returncode != 0:
        started = _run(str(UDEVD), "--daemon")
        if started.returncode != 0:
            pytest.skip(f"cannot start udevd: {started.stderr.strip()}")
        for _ in range(50):
            if _run("udevadm", "control", "--ping").returncode == 0:
                break
            time.sleep(0.1)
        _run("udevadm", "trigger", "--action=add", "--subsystem-match=block")
        _run("udevadm", "settle", "--timeout=30", timeout=60)
    RULES_DIR.mkdir(parents=True, exist_ok=True)
    # A per-process name: a parallel test run elsewhere on the machine keeps its own copy.
    installed = RULES_DIR / f"61-medpass-test-fake-media-{os.getpid()}.rules"
    shutil.copyfile(TEST_RULE, installed)
    _run("udevadm", "control", "--reload")
    try:
        yield
    finally:
        installed.unlink(missing_ok=True)
        _run("udevadm", "control", "--reload")


def fat_image(path: Path, files: dict[str, bytes], label: str) -> Path:
    """A FAT32 image (``mkfs.vfat -F 32``) holding ``files``, written with mtools."""
    need_tools("mkfs.vfat", "mcopy", "mmd")
    assert "fakeusb" in path.name, "the test udev rule only marks *fakeusb* images as USB"
    with open(path, "wb") as fh:
        fh.truncate(FAT32_BYTES)
    made = _run("mkfs.vfat", "-F", "32", "-n", label, str(path))
    assert made.returncode == 0, made.stderr
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": os.devnull}
    staging = path.parent / (path.name + ".files")
    made_dirs: set[str] = set()
    for rel, data in files.items():
        parts = rel.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in made_dirs:
                subprocess.run(["mmd", "-i", str(path), f"::/{folder}"], env=env, check=True,
                               capture_output=True, timeout=30)
                made_dirs.add(folder)
        local = staging / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        subprocess.run(["mcopy", "-i", str(path), str(local), f"::/{rel}"], env=env,
                       check=True, capture_output=True, timeout=30)
    shutil.rmtree(staging, ignore_errors=True)
    return path


def iso_image(tree: Path, path: Path, label: str) -> Path:
    """An ISO9660 + Rock Ridge image of ``tree`` (xorriso), as a hospital CD."""
    need_tools("xorriso")
    assert "fakecd" in path.name, "the test udev rule only marks *fakecd* images as discs"
    made = _run("xorriso", "-as", "mkisofs", "-R", "-V", label, "-o", str(path), str(tree),
                timeout=120)
    assert made.returncode == 0, made.stderr
    return path


def ext4_image(tree: Path, path: Path, label: str, size_mb: int = 32) -> Path:
    """An ext4 image of ``tree`` (``mkfs.ext4 -d``): a stick the kernel here can mount."""
    need_tools("mkfs.ext4")
    with open(path, "wb") as fh:
        fh.truncate(size_mb * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-L", label, "-d", str(tree), str(path))
    assert made.returncode == 0, made.stderr
    return path


class Loop:
    """A loop device over one image; :meth:`detach` only ever detaches this one.

    Use as a context manager (or call :meth:`detach` in a ``finally``): a test that fails
    half-way must not leave loop devices behind on a shared machine.
    """

    def __init__(self, image: Path, *, read_only: bool = False, settle: bool = False) -> None:
        argv = ["losetup", "-f", "--show", *(["-r"] if read_only else []), str(image)]
        attached = _run(*argv)
        if attached.returncode != 0:
            pytest.skip(f"cannot attach a loop device here: {attached.stderr.strip()}")
        self.image = image.resolve()
        self.device = attached.stdout.strip()
        self.attached = True
        if settle:  # callers that read udev's database right away need udev to be done
            _run("udevadm", "settle", "--timeout=10", timeout=30)

    def _still_ours(self) -> bool:
        backing = Path("/sys/block") / Path(self.device).name / "loop" / "backing_file"
        try:
            return Path(backing.read_text().strip()) == self.image
        except OSError:
            return False

    def detach(self) -> None:
        """``losetup -d``, if the device still holds our image; idempotent."""
        if self.attached:
            self.attached = False
            if self._still_ours():
                _run("losetup", "-d", self.device)

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def device_size(device: str) -> int:
    """Bytes readable from ``device`` now (0 once a loop device is detached)."""
    fd = os.open(device, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


@contextlib.contextmanager
def loop_cleanup() -> Iterator[list[Loop]]:
    """Collect loops created inside the block and detach them all on the way out."""
    loops: list[Loop] = []
    try:
        yield loops
    finally:
        for loop in loops:
            loop.detach()
