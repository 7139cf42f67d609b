"""Every word on the desk exists in English and Chinese, with the same fields to fill in."""

from __future__ import annotations

import re
import string
from pathlib import Path

import kiosk_tui
from kiosk_tui import fmt
from kiosk_tui.i18n import STRINGS, other, t

SCREENS = Path(kiosk_tui.__file__).parent
#: i18n keys as the screens spell them: tr("…"), t("…", …), ("…", {…}), Binding(…, "k.…").
KEY = re.compile(r"""["']((?:[a-z_]+\.)+[a-z_0-9]+)["']""")
PREFIXES = {key.split(".")[0] for key in STRINGS}


def used_keys() -> set[str]:
    found = set()
    for path in SCREENS.glob("*.py"):
        for key in KEY.findall(path.read_text(encoding="utf-8")):
            if key.split(".")[0] in PREFIXES and not (key.startswith("app.")
                                                      and key != "app.title"):
                found.add(key)  # "app.focus_next" and the like are actions, not strings
    return found


def test_every_key_a_screen_uses_is_translated() -> None:
    dynamic = ("import.phase.", "export.phase.", "status.", "state.", "sex.", "source.",
               "sync.")  # completed at run time: f"import.phase.{phase}"
    missing = sorted(k for k in used_keys() if k not in STRINGS and not k.endswith(dynamic))
    assert missing == []


def test_both_languages_have_text_and_the_same_fields() -> None:
    fields = string.Formatter()
    for key, (en, zh) in STRINGS.items():
        assert en.strip() and zh.strip(), key
        names = ({f for _, f, _, _ in fields.parse(en) if f},
                 {f for _, f, _, _ in fields.parse(zh) if f})
        assert names[0] == names[1], key


def test_phases_states_and_sources_are_all_there() -> None:
    for phase in ("counting", "copying", "verifying", "saving", "done"):
        assert f"import.phase.{phase}" in STRINGS
    for phase in ("checking", "writing", "verifying", "done"):
        assert f"export.phase.{phase}" in STRINGS
    for state in ("missing", "pending", "synced"):
        assert f"state.{state}" in STRINGS
    for source in ("medium", "inbox", "dicomweb", "coordinator"):
        assert f"source.{source}" in STRINGS
    for state in ("online", "offline", "error", "disabled"):
        assert f"sync.{state}" in STRINGS


def test_the_language_key_names_the_other_language() -> None:
    assert t("k.lang", "en") == "中文" and t("k.lang", "zh") == "English"
    assert other("en") == "zh" and other("zh") == "en"
    assert t("import.files", "zh", done=3, total=9) == "文件   3 / 9"
    assert t("no.such.key", "en") == "no.such.key"


def test_sizes_durations_and_names_read_well() -> None:
    assert fmt.megabytes(1_234_567) == "1.2 MB" and fmt.megabytes(345e6) == "345 MB"
    assert fmt.megabytes(64e9) == "64.0 GB"
    assert fmt.eta_seconds(50, 100, 10.0) == 10 and fmt.eta_seconds(0, 100, 10.0) is None
    assert fmt.duration(75, "en") == "1 min 15 s" and fmt.duration(75, "zh") == "1 分 15 秒"
    assert fmt.dicom_date("19850314") == "1985-03-14" and fmt.dicom_date(None) == ""
    assert fmt.passport_name_guess("Li^Hua=李^华=") == "LI HUA"
    assert fmt.shorten("DICOM/ST000001/SE000001/IM000007", 12) == "…01/IM000007"
    assert fmt.local_time("garbage") == "" and not fmt.is_today(None)


def test_a_disc_refused_before_indexing_is_explained_in_both_languages() -> None:
    from kiosk.errors import DiscTreeLimitError
    from kiosk.sources.iso_census import _files_message, max_records, time_limit_error
    from kiosk.sources.scan_limits import ScanLimits
    from kiosk_tui.dialogs import error_say

    limits = ScanLimits(max_files=5)
    errors = [
        DiscTreeLimitError(_files_message(limits), limit="max_files",
                           values={"n": f"{max_records(limits):,}", "limit": "5"}),
        time_limit_error(limits),
        DiscTreeLimitError("loop", limit="loop"),
        DiscTreeLimitError("size", limit="directory_bytes"),
    ]
    for exc in errors:
        title, (key, values) = error_say(exc)
        assert title == ("error.disc_tree_title", {})
        assert key in STRINGS, key
        english, chinese = t(key, "en", **values), t(key, "zh", **values)
        assert "{" not in english and "{" not in chinese
        assert chinese != english
    assert f"{max_records(limits):,}" in t("error.disc_tree.max_files", "zh", **errors[0].values)
