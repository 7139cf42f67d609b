"""``kiosk cases``: ``--json`` prints every summary as before; --limit, --since, --find."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

from kiosk.bootstrap import build_service
from kiosk.cli.main import main
from kiosk.samples.bulk import write_study


def _cases(data: Path, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--data-dir", str(data), "cases", *extra])
    return code, out.getvalue()


def test_kiosk_cases_json_lists_every_summary_and_the_filters_narrow_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    service = build_service(data_dir=data, env={})
    ids = []
    for n in range(4):
        medium = tmp_path / f"m{n}"
        write_study(medium, instances=1, rows=8, columns=8, seed=n + 1, patient_id=f"P{n}",
                    patient_name=f"DOE^NUMBER{n}")
        ids.append(service.import_path(medium)["case_id"])
    code, text = _cases(data, "--json")
    assert code == 0
    # The streamed listing is the same document the service gives, newest first.
    assert json.loads(text) == {"cases": service.case_summaries()}
    assert [c["case_id"] for c in json.loads(text)["cases"]] == ids[::-1]
    code, text = _cases(data, "--json", "--limit", "2")
    assert [c["case_id"] for c in json.loads(text)["cases"]] == ids[::-1][:2]
    code, text = _cases(data, "--json", "--find", "number2")
    assert [c["case_id"] for c in json.loads(text)["cases"]] == [ids[2]]
    code, text = _cases(data, "--json", "--since", "2999-01-01")
    assert json.loads(text) == {"cases": []}
    code, text = _cases(data, "--find", "nobody-like-this")
    assert code == 0 and "No case matches" in text
    code, text = _cases(data, "--limit", "1")
    assert ids[-1] in text and ids[0] not in text


def test_kiosk_cases_json_on_an_empty_kiosk_is_an_empty_list(tmp_path: Path) -> None:
    code, text = _cases(tmp_path / "data", "--json")
    assert code == 0 and json.loads(text) == {"cases": []}


def test_listing_cases_loads_no_dicom_crypto_or_network_library(tmp_path: Path) -> None:
    # `kiosk cases` reads the index only: its start-up must not pay for pydicom & co.
    import subprocess
    import sys

    code = ("import sys; from kiosk.cli.main import main; "
            f"rc = main(['--data-dir', {str(tmp_path / 'data')!r}, 'cases', '--json']); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydicom', 'numpy', 'cryptography', 'jwt', 'requests', 'PIL'}); "
            "print('heavy', heavy); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "heavy []"


def test_the_listing_through_a_real_pipe_is_utf8_json_with_chinese_names(tmp_path: Path) -> None:
    # The full listing is written as UTF-8 bytes straight to stdout's buffer.
    import subprocess
    import sys

    from kiosk.samples.sample_disc import build_sample_disc

    disc = build_sample_disc(tmp_path / "disc")
    build_service(data_dir=tmp_path / "data", env={}).import_path(disc.root)
    done = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "--data-dir",
                           str(tmp_path / "data"), "cases", "--json"], capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout.decode("utf-8"))["cases"]
    assert [c["patients"][0]["name_display"] for c in listed] == ["Li Hua 李华"]
