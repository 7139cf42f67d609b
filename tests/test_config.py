"""Configuration: defaults, validation that names the bad key, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.bootstrap import build_service, resolve_data_dir
from kiosk.config import load_config
from kiosk.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_sensible_defaults() -> None:
    config = load_config(None, env={})
    assert config.import_.workers == 2 and config.import_.read_retries == 3
    assert config.cloud.url == ""


def test_a_full_file_is_read(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, 'kiosk_id = "desk-7"\n[import]\nworkers = 4\n'
                                          '[cloud]\nurl = "https://pacs.example/dicom-web"\n'),
                         env={})
    assert config.kiosk_id == "desk-7" and config.import_.workers == 4
    assert config.cloud.url == "https://pacs.example/dicom-web"


@pytest.mark.parametrize(("text", "named"), [
    ("[import]\nworkerz = 2\n", "import.workerz"),
    ("colour = 'blue'\n", "colour"),
    ("[import]\nworkers = true\n", "import.workers"),
    ("[import]\nworkers = 'two'\n", "import.workers"),
    ("[import]\nworkers = 0\n", "import.workers"),
    ("import = 3\n", "import"),
    ("[cloud]\nurl = 'ftp://x'\n", "cloud.url"),
    ("[cloud]\ntoken = 't'\nuser = 'u'\n", "cloud.token"),
    ("kiosk_id = ''\n", "kiosk_id"),
])
def test_a_bad_setting_is_refused_with_its_name(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text), env={})
    assert f"'{named}'" in err.value.text


def test_broken_toml_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[import\n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_cloud_secrets_come_from_the_environment_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[cloud]\nurl = 'http://a:8042/dicom-web'\nuser = 'file'\n")
    config = load_config(path, env={"KIOSK_CLOUD_USER": "env-user",
                                    "KIOSK_CLOUD_PASSWORD": "s3cret"})
    assert (config.cloud.user, config.cloud.password) == ("env-user", "s3cret")
    assert config.cloud.url == "http://a:8042/dicom-web"


def test_data_dir_precedence_is_flag_then_env_then_config(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, f"data_dir = '{tmp_path / 'cfg'}'\n"), env={})
    env = {"KIOSK_DATA_DIR": str(tmp_path / "env")}
    assert resolve_data_dir(config, tmp_path / "flag", env) == tmp_path / "flag"
    assert resolve_data_dir(config, None, env) == tmp_path / "env"
    assert resolve_data_dir(config, None, {}) == tmp_path / "cfg"


def test_the_config_file_can_come_from_kiosk_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "kiosk_id = 'from-env'\n")
    service = build_service(data_dir=tmp_path / "d", env={"KIOSK_CONFIG": str(path)})
    assert service.config.kiosk_id == "from-env"
    assert (tmp_path / "d" / "blobs").is_dir()
