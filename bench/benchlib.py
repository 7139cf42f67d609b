"""Helpers shared by the benchmark scripts: fair timing of child processes (DESIGN.md §6).

The scripts import this as a sibling module: ``python bench/SCRIPT.py`` puts ``bench/`` first
on ``sys.path``. Only the standard library is used here, so importing it costs nothing in a
timed child.

What "fair" means here:

* every contender starts page-cached (:func:`warm`), after the previous output was deleted, a
  ``sync`` and a few idle seconds (:func:`settle`: figures skew otherwise);
* each contender is a child process whose own rusage gives its CPU time and peak RSS
  (:func:`run_child`), never this script's. The peak RSS comes from GNU ``time``'s ``%M``, not
  from our ``wait4``: Linux carries the forking process's high-water RSS into the child's
  ``ru_maxrss`` at ``exec`` (after generating a tree in-process, this script's 300 MB would
  show up as 7-Zip's peak). ``/usr/bin/time`` is small, so the figure is the child's own;
  without it, ``ru_maxrss`` is used and a note says the figure is an upper bound;
* the CPU time other processes used meanwhile is measured (``/proc/stat`` minus the child's
  rusage, kernel writeback included) so a disturbed run is flagged (:func:`warn_if_disturbed`).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TARGET_RSS_MB = 200.0  # peak RSS of a kiosk process, any benchmark
FOREIGN_WARN = 0.25  # cores used by other processes during a timed run before we warn
PASSPHRASE = "BENCH-7Q4M-K9XT-2WPR"  # for archives the benchmarks write with 7z
KIOSK_MAIN = "import sys\nfrom kiosk.cli.main import main\nsys.exit(main())"  # `kiosk`, this venv

_READ_BUF = bytearray(1 << 20)
_TICK = os.sysconf("SC_CLK_TCK")
_GNU_TIME: list[str | None] = []  # cached: the GNU time executable, or None


def say(message: str) -> None:
    """Progress on stderr (stdout is the report)."""
    print(message, file=sys.stderr, flush=True)


def median(values: Iterable[float]) -> float:
    """The median, NaN when there is no value."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


# --- sources ----------------------------------------------------------------------------------

def _walk(paths: Iterable[Path]) -> Iterable[str]:
    for path in paths:
        if path.is_dir():
            for dirpath, _dirs, names in os.walk(path):
                for n in names:
                    yield os.path.join(dirpath, n)
        else:
            yield str(path)


def tree_size(src: Path) -> tuple[int, int]:
    """(files, bytes) under ``src``."""
    files = size = 0
    for name in _walk([src]):
        files += 1
        size += os.lstat(name).st_size
    return files, size


def warm(paths: Iterable[Path]) -> None:
    """Read every file once (directories are walked) so every contender starts page-cached."""
    mv = memoryview(_READ_BUF)
    for name in _walk(paths):
        with open(name, "rb", buffering=0) as fh:
            while fh.readinto(mv):
                pass


def settle(out: Path | None, sources: Iterable[Path], seconds: float, *,
           recreate: bool = False) -> None:
    """Delete the previous output, re-warm the sources, ``sync``, and let the disk go idle."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
        if recreate:
            out.mkdir(parents=True)
    warm(sources)
    os.sync()
    time.sleep(seconds)


# --- children ---------------------------------------------------------------------------------

def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not iowait) since boot."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(f[:8]) - f[3] - f[4]) / _TICK  # user..steal minus idle and iowait


@dataclass(frozen=True)
class Child:
    """A finished child process and what it cost."""

    cmd: list[str]
    code: int
    wall: float  # seconds, start to reaped
    cpu: float  # user + sys seconds of the child (and its reaped children)
    rss_mb: float  # peak RSS of the child (and its descendants), MB of 10^6 bytes
    foreign: float  # CPU seconds used by *other* processes meanwhile
    stdout: str
    stderr: str

    @property
    def others(self) -> float:
        """Cores used by other processes during the run (/proc/stat ticks are 10 ms: runs
        shorter than a second count as one second)."""
        return self.foreign / max(self.wall, 1.0)

    def check(self) -> Child:
        """``self``, or RuntimeError with the end of stderr when the child failed."""
        if self.code != 0:
            tail = " | ".join(self.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"{Path(self.cmd[0]).name} exited {self.code}: {tail}")
        return self


def gnu_time() -> str | None:
    """GNU ``time`` (whose ``%M`` is its child's peak RSS in KiB), or None."""
    if not _GNU_TIME:
        exe = shutil.which("time") or (
            "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None)
        if exe is not None:
            probe = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                   check=False)
            exe = exe if "GNU" in probe.stdout + probe.stderr else None
        if exe is None:
            say("note: GNU time not found (apt-get install time): peak RSS figures are "
                "ru_maxrss, which includes this script's own peak (an upper bound)")
        _GNU_TIME.append(exe)
    return _GNU_TIME[0]


def run_child(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
              stdout: Path | None = None, stderr: Path | None = None) -> Child:
    """Run ``cmd`` and time it.

    stdout and stderr go to the given files (temporary ones otherwise; never pipes, which would
    need reading while the child runs) and are returned as text. ``wait4`` gives the child's
    CPU time (its reaped children included); the peak RSS is GNU time's ``%M`` (see the module
    docstring).
    """
    timer = gnu_time()
    with (open(stdout, "w+b") if stdout else tempfile.TemporaryFile()) as out, \
            (open(stderr, "w+b") if stderr else tempfile.TemporaryFile()) as err, \
            tempfile.NamedTemporaryFile("w+", prefix="bench-rss-") as rss_file:
        argv = [timer, "-f", "%M", "-o", rss_file.name, "--", *cmd] if timer else cmd
        busy0 = busy_cpu()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        cpu = usage.ru_utime + usage.ru_stime
        foreign = max(busy_cpu() - busy0 - cpu, 0.0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kib = usage.ru_maxrss
        if timer:  # "Command exited with non-zero status N" may come first
            lines = rss_file.read().split()
            rss_kib = int(lines[-1]) if lines and lines[-1].isdigit() else rss_kib
        out.seek(0)
        err.seek(0)
        return Child(cmd, proc.returncode, wall, cpu, rss_kib * 1024 / 1e6, foreign,
                     out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def kiosk_cmd(*args: str | Path) -> list[str]:
    """A fresh ``kiosk ARGS...`` process of this interpreter (this venv's kiosk)."""
    return [sys.executable, "-c", KIOSK_MAIN, *map(str, args)]


#: Where kiosk children keep compiled bytecode (see :func:`kiosk_env`).
PYCACHE = Path(tempfile.gettempdir()) / "kiosk-bench-pycache"


def kiosk_env() -> dict[str, str]:
    """This environment for a kiosk child: as installed, and never pointed elsewhere.

    Installed, the kiosk runs from compiled bytecode (pip and the image build write it). A
    development shell may set ``PYTHONDONTWRITEBYTECODE``, which makes every start compile
    every module of ours again (about 0.3 s here): children get a bytecode cache of their own
    instead (``PYTHONPYCACHEPREFIX``, outside the work tree), filled by :func:`warm_bytecode`.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("KIOSK_DATA_DIR", "KIOSK_CONFIG", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def warm_bytecode(*modules: str) -> None:
    """Compile ``modules`` (and what they import) into the children's bytecode cache, untimed."""
    subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], env=kiosk_env(),
                   check=True)


def default_config(workdir: Path) -> Path:
    """An empty TOML file: the kiosk's built-in defaults, never ``/etc/medpass-kiosk``'s."""
    config = workdir / "defaults.toml"
    config.write_text("# bench: the kiosk's built-in defaults\n")
    return config


def warn_if_disturbed(cores: Iterable[float]) -> None:
    """Print a WARNING when other processes used more than :data:`FOREIGN_WARN` of a core."""
    worst = max(cores, default=0.0)
    if worst > FOREIGN_WARN:
        print(f"WARNING: other processes used up to {worst:.0%} of a core during a timed run "
              "(kernel writeback included): figures are disturbed; rerun on a quiet machine.")


# --- 7-Zip ------------------------------------------------------------------------------------

def find_7z() -> str | None:
    """The ``7z`` executable, or None (after saying how to get it)."""
    seven = shutil.which("7z")
    if seven is None:
        say("7z not found (apt-get install p7zip-full)")
    return seven


def seven_test(seven: str, archive: Path | str, passphrase: str) -> tuple[bool, int | None]:
    """``7z t -pPASSPHRASE ARCHIVE``: (whether everything is OK, files it counted)."""
    proc = subprocess.run([seven, "t", f"-p{passphrase}", str(archive)],
                          capture_output=True, text=True, check=False)
    ok = proc.returncode == 0 and "Everything is Ok" in proc.stdout
    m = re.search(r"^Files: (\d+)", proc.stdout, re.M)
    return ok, int(m.group(1)) if m else None


@dataclass
class Runs:
    """Measurements of one contender, one value per run."""

    label: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)  # other processes' CPU, in cores
    extra: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        """Record an extra per-run figure under ``key``."""
        self.extra.setdefault(key, []).append(value)
