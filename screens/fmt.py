"""Numbers, sizes, durations and dates as the desk shows them (pure: no Textual, no I/O)."""

from __future__ import annotations

import datetime as dt


def megabytes(n: int | float) -> str:
    """``12.3 MB``; whole megabytes from 100 MB on (decimals only flicker), GB from 10 GB."""
    mb = n / 1e6
    if mb >= 10_000:
        return f"{mb / 1000:.1f} GB"
    return f"{mb:.0f} MB" if mb >= 100 else f"{mb:.1f} MB"


def rate(bytes_done: int, seconds: float) -> float:
    """MB/s so far (0 before anything happened)."""
    return bytes_done / 1e6 / seconds if seconds > 0 else 0.0


def eta_seconds(bytes_done: int, bytes_total: int, seconds: float) -> int | None:
    """Seconds left at the average rate so far, or None while it is not known yet."""
    if bytes_done <= 0 or seconds < 0.5 or bytes_total <= bytes_done:
        return None
    return int((bytes_total - bytes_done) * seconds / bytes_done + 0.5)


def duration(seconds: int, lang: str) -> str:
    """``1 min 05 s`` / ``1 分 05 秒``."""
    minutes, secs = divmod(max(0, seconds), 60)
    if lang == "zh":
        return f"{minutes} 分 {secs:02d} 秒" if minutes else f"{secs} 秒"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def dicom_date(value: str | None) -> str:
    """``20261127`` as ``2026-11-27``; anything else as it is ("" for nothing)."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def passport_name_guess(stored: str) -> str:
    """A first guess of the passport spelling from a DICOM name: ``Li^Hua=李^华=`` -> ``LI HUA``.

    Only a suggestion the coordinator overwrites from the passport; the Latin group is used.
    """
    latin = stored.split("=")[0]
    parts = [p.strip() for p in latin.split("^") if p.strip()]
    return " ".join(parts).upper()


def local_time(iso_utc: str | None) -> str:
    """``2026-11-27T08:05:00Z`` as local ``HH:MM`` ("" when missing or malformed)."""
    moment = _parse(iso_utc)
    return moment.astimezone().strftime("%H:%M") if moment else ""


def local_when(iso_utc: str | None, today: dt.date | None = None) -> str:
    """``HH:MM`` for today, else the local date ``YYYY-MM-DD HH:MM`` ("" when malformed)."""
    moment = _parse(iso_utc)
    if moment is None:
        return ""
    local = moment.astimezone()
    return local.strftime("%H:%M" if local.date() == (today or dt.date.today())
                          else "%Y-%m-%d %H:%M")


def is_today(iso_utc: str | None, today: dt.date | None = None) -> bool:
    """Whether a UTC timestamp falls on today's local date."""
    moment = _parse(iso_utc)
    if moment is None:
        return False
    return moment.astimezone().date() == (today or dt.date.today())


def _parse(iso_utc: str | None) -> dt.datetime | None:
    if not iso_utc:
        return None
    try:
        return dt.datetime.strptime(iso_utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def shorten(path: str, width: int) -> str:
    """Keep the end of a long path (the file name matters most): ``…/SE000001/IM000007``."""
    if len(path) <= width:
        return path
    return "…" + path[-(width - 1):] if width > 1 else "…"

