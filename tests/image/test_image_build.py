"""The appliance image (``image-build/``): its files agree with each other and with the code,
its units verify clean in a real image root, its sandboxes stay tight, and the kiosk works
inside the image.

The first tests read files only. The ``image`` tests need root, mmdebstrap and the network
(deb.debian.org and PyPI): they run the documented build, ``image-build/build --arch amd64``,
once per session (the same package lists, overlay and customize hook as the Pi image; about
two and a half minutes here, mostly downloads and the initramfs) and check the root file
system and the disk image it made. The arm64 smoke test under qemu-user takes longer than CI
allows: it is ``image-build/smoke`` (image-build/README.md, "Smoke test"), and booting the
image in QEMU is ``tests/image/boot-check``.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.links.printer import KNOWN_VENDORS
from kiosk.media.mount_policy import MOUNT_ROOT
from kiosk.media.mounter import HELPER_SOCKET

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "image-build"
OVERLAY = IMAGE / "overlay"
UNIT_DIR = OVERLAY / "etc/systemd/system"
KIOSK_UNIT = UNIT_DIR / "medpass-kiosk.service"
UNITS = sorted(p for p in UNIT_DIR.iterdir() if p.suffix in (".service", ".socket"))
SCRIPTS = [IMAGE / "build", IMAGE / "customize", IMAGE / "smoke",
           REPO / "tests/image/boot-check", REPO / "tests/image/check"]
#: CI fails when a unit's `systemd-analyze security` exposure rises above its limit.
EXPOSURE_LIMITS = {"medpass-kiosk.service": 2.5, "kiosk-mount-helper@.service": 4.5}
EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+) (\w+)")


def image_conf() -> dict[str, str]:
    """image-build/image.conf as a dict (KEY=VALUE lines)."""
    conf = {}
    for line in (IMAGE / "image.conf").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            conf[key] = value
    return conf


class _MultiDict(dict):  # type: ignore[type-arg]
    """configparser storage that keeps every value of a repeated key (DeviceAllow=)."""

    def __setitem__(self, key: str, value: object) -> None:
        if key in self and isinstance(value, list) and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def unit(path: Path) -> configparser.RawConfigParser:
    """A unit file parsed; repeated keys are joined by newlines."""
    parser = configparser.RawConfigParser(dict_type=_MultiDict, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def packages(name: str) -> list[str]:
    """The package names in image-build/packages/NAME.list."""
    text = (IMAGE / "packages" / f"{name}.list").read_text()
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


def environment(service: configparser.SectionProxy) -> dict[str, str]:
    """The unit's Environment= assignments."""
    return dict(line.split("=", 1) for line in service["Environment"].splitlines())


def exposure(unit_file: Path, root: Path | None = None) -> float:
    """`systemd-analyze security --offline` of one unit: printed, and its overall figure."""
    args = [f"--root={root}", unit_file.name] if root else [str(unit_file)]
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", *args],
                            capture_output=True, text=True)
    match = EXPOSURE.search(result.stdout)
    assert match is not None, result.stdout + result.stderr
    print(f"\nsystemd-analyze security {unit_file.name}"
          f"{' (image root)' if root else ''}: {match.group(2)} {match.group(3)}")
    return float(match.group(2))


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The overlay as ``build`` lays it over the image (with the repository's udev rules)."""
    dest = tmp_path_factory.mktemp("overlay")
    subprocess.run([str(IMAGE / "build"), "--stage-overlay", str(dest)], check=True)
    return dest


# --- the files agree --------------------------------------------------------------------------

@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_build_scripts_parse(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_build_scripts_pass_shellcheck() -> None:
    result = subprocess.run(["shellcheck", "--severity=info", *map(str, SCRIPTS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_image_mounts_through_the_helper_service_not_sudo() -> None:
    conf = image_conf()
    socket_unit = unit(UNIT_DIR / "kiosk-mount-helper.socket")["Socket"]
    assert socket_unit["ListenStream"] == str(HELPER_SOCKET)
    assert (socket_unit["SocketGroup"], socket_unit["SocketMode"]) == (conf["KIOSK_USER"],
                                                                       "0660")
    assert socket_unit["Accept"] == "yes"
    helper = unit(UNIT_DIR / "kiosk-mount-helper@.service")["Service"]
    assert helper["ExecStart"] == f"{conf['VENV']}/bin/kiosk-mount-helper serve"
    assert helper["StandardInput"] == helper["StandardOutput"] == "socket"
    # Its mounts must reach the desk: no file-system namespace for the helper.
    namespacing = {"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
                   "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "PrivateMounts",
                   "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                   "ProtectControlGroups", "PrivateNetwork", "MountFlags",
                   "TemporaryFileSystem"}
    assert not namespacing & set(helper)
    # No sudo: the desk's sandbox forbids new privileges, which setuid programs need.
    assert "sudo" not in packages("common") and not (OVERLAY / "etc/sudoers.d").exists()
    desk = unit(KIOSK_UNIT)["Service"]
    assert desk["NoNewPrivileges"] == "yes" and desk["CapabilityBoundingSet"] == ""


@pytest.mark.skipif(shutil.which("visudo") is None, reason="visudo (package sudo) is missing")
def test_the_sudoers_rule_for_a_kiosk_installed_by_hand_parses(tmp_path: Path) -> None:
    conf = image_conf()
    expected = f"{conf['KIOSK_USER']} ALL=(root) NOPASSWD: {conf['VENV']}/bin/kiosk-mount-helper"
    # The same rule as the README and the helper document.
    assert expected in (REPO / "README.md").read_text()
    assert expected in (REPO / "kiosk/media/mount_helper.py").read_text()
    rule = tmp_path / "medpass-kiosk"
    rule.write_text(expected + "\n")
    result = subprocess.run(["visudo", "-c", "-f", str(rule)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    rule.write_text(expected.replace("NOPASSWD:", "NOPASSWD") + "\n")  # a typo is caught
    result = subprocess.run(["visudo", "-c", "-f", str(rule)], capture_output=True, text=True)
    assert result.returncode != 0


def test_the_image_installs_the_repository_udev_rules_unchanged(staged: Path) -> None:
    ours = {p.name: p.read_bytes() for p in (REPO / "udev").glob("*.rules")}
    installed = {p.name: p.read_bytes() for p in (staged / "etc/udev/rules.d").glob("*.rules")}
    assert ours and installed == ours
    # One source of truth: the overlay in the repository holds no copy of its own.
    assert not (OVERLAY / "etc/udev").exists()


def test_the_printer_rule_covers_every_known_receipt_printer_maker() -> None:
    rule = (REPO / "udev/66-medpass-printer.rules").read_text()
    match = re.search(r'ATTR\{idVendor\}=="([0-9a-f|]+)"', rule)
    assert match is not None
    assert set(match.group(1).split("|")) == {f"{v:04x}" for v in KNOWN_VENDORS}
    assert 'GROUP="lp"' in rule and "lp" in image_conf()["KIOSK_GROUPS"].split(",")


def test_paths_agree_between_settings_units_fstab_and_code() -> None:
    conf = image_conf()
    parsed = unit(KIOSK_UNIT)
    service = parsed["Service"]
    assert service["User"] == conf["KIOSK_USER"]
    assert f" {conf['VENV']}/bin/kiosk" in service["ExecStart"]
    env = environment(service)
    assert env["KIOSK_DATA_DIR"] == conf["DATA_DIR"]
    assert env["XDG_RUNTIME_DIR"] == "/run/" + service["RuntimeDirectory"]
    assert service["ReadWritePaths"].split() == [conf["DATA_DIR"]]
    assert parsed["Unit"]["RequiresMountsFor"] == conf["DATA_DIR"]

    fstab = {fields[1]: fields for line in (OVERLAY / "etc/fstab").read_text().splitlines()
             if (fields := line.split()) and not line.startswith("#")}
    assert fstab["/"][0] == f"LABEL={conf['ROOT_LABEL']}"
    assert "ro" in fstab["/"][3].split(",")
    data = fstab[conf["DATA_DIR"]]
    assert data[0] == f"LABEL={conf['DATA_LABEL']}"
    assert {"nosuid", "nodev", "noexec"} <= set(data[3].split(","))
    assert {fstab[p][2] for p in ("/tmp", "/var/tmp", "/var/log", "/var/lib/systemd")} == {
        "tmpfs"}

    tmpfiles = (OVERLAY / "etc/tmpfiles.d/medpass-kiosk.conf").read_text()
    assert f"d {MOUNT_ROOT} 0755 root root -" in tmpfiles
    assert f"d {conf['DATA_DIR']} 0700 {conf['KIOSK_USER']} {conf['KIOSK_USER']} -" in tmpfiles
    foot = service["ExecStart"].split("--config=")[1].split()[0]
    assert (OVERLAY / foot.lstrip("/")).is_file()
    raspi = (IMAGE / "overlay-arm64/etc/default/raspi-firmware").read_text()
    assert f'ROOTPART="LABEL={conf["ROOT_LABEL"]}"' in raspi


def test_the_kiosk_session_restarts_and_is_watched() -> None:
    parsed = unit(KIOSK_UNIT)
    service = parsed["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "all"
    assert 0 < int(service["WatchdogSec"].removesuffix("s")) <= 60
    assert service["Restart"] == "always" and parsed["Unit"]["StartLimitIntervalSec"] == "0"
    assert service["TTYPath"] == "/dev/tty1"
    assert parsed["Unit"]["Conflicts"] == "getty@tty1.service"
    argv = service["ExecStart"].split()
    # cage shows foot, foot runs the kiosk and nothing else: no shell anywhere.
    assert argv[0] == "/usr/bin/cage" and argv[argv.index("--") + 1] == "/usr/bin/foot"
    assert argv[-1].endswith("/bin/kiosk")
    assert not {"sh", "bash", "-c"} & {Path(a).name for a in argv}


def test_foot_offers_no_way_out_of_the_desk() -> None:
    foot = configparser.ConfigParser(strict=False)
    foot.read_string("[main]\n" + (OVERLAY / "etc/medpass-kiosk/foot.ini").read_text())
    bindings = foot["key-bindings"]
    for action in ("spawn-terminal", "show-urls-launch", "pipe-visible", "pipe-scrollback",
                   "pipe-selected"):
        assert bindings[action] == "none", action
    assert "Droid Sans Fallback" in foot["main"]["font"]
    assert "fonts-droid-fallback" in packages("common")


def test_the_package_lists_hold_what_the_image_needs() -> None:
    common, arm64, amd64 = packages("common"), packages("arm64"), packages("amd64")
    for names in (common, arm64, amd64):
        assert len(names) == len(set(names))
    assert not set(common) & (set(arm64) | set(amd64))
    needed = {"cage", "foot", "seatd", "python3-venv", "libusb-1.0-0", "fonts-droid-fallback",
              "eject", "mtools", "mount"}
    assert needed <= set(common)
    assert {"linux-image-arm64", "raspi-firmware"} <= set(arm64)
    assert {"linux-image-amd64", "systemd-boot-efi"} <= set(amd64)
    # Nothing that listens, automounts or lends root.
    banned = {"openssh-server", "avahi-daemon", "udisks2", "cups", "network-manager", "sudo"}
    assert not banned & set(common + arm64 + amd64)


def test_the_units_list_enables_the_desk_and_masks_every_login_prompt() -> None:
    actions: dict[str, set[str]] = {}
    for line in (IMAGE / "units.list").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            assert words[0] in ("enable", "disable", "mask"), line
            actions.setdefault(words[0], set()).update(words[1:])
    assert {"medpass-kiosk.service", "kiosk-mount-helper.socket",
            "seatd.service"} <= actions["enable"]
    assert {"getty@.service", "autovt@.service", "serial-getty@.service",
            "console-getty.service", "systemd-logind.service"} <= actions["mask"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", sorted(EXPOSURE_LIMITS))
def test_the_units_exposure_stays_low(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        figure = exposure(UNIT_DIR / name)
    assert figure <= EXPOSURE_LIMITS[name]


@pytest.mark.parametrize(("args", "message"), [
    ([], "--arch is required"),
    (["--arch", "riscv64"], "--arch must be arm64 or amd64"),
    (["--arch", "amd64", "--bogus"], "unknown argument: --bogus"),
    (["--arch", "amd64", "--data-mib", "lots"], "--data-mib must be a number"),
    (["--arch", "amd64", "--overlay", "/nonexistent/overlay"], "no such file or directory"),
])
def test_the_build_refuses_bad_arguments(args: list[str], message: str) -> None:
    result = subprocess.run([str(IMAGE / "build"), *args], capture_output=True, text=True)
    assert result.returncode != 0 and message in result.stderr


def test_a_settings_file_that_is_not_key_value_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "image-build"
    shutil.copytree(IMAGE, copy)
    (copy / "image.conf").write_text("SUITE=bookworm\n$(touch /tmp/pwned)\n")
    result = subprocess.run([str(copy / "build"), "--stage-overlay", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "not KEY=VALUE" in result.stderr


# --- the image, built ---------------------------------------------------------------------------

needs_build = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mmdebstrap") is None or shutil.which("sfdisk") is None,
    reason="building the image needs root, mmdebstrap and sfdisk (and the network)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``image-build/build --arch amd64 --out DIR``, once: DIR holds rootfs/ and the image."""
    out = tmp_path_factory.mktemp("image")
    subprocess.run([str(IMAGE / "build"), "--arch", "amd64", "--out", str(out)], check=True,
                   timeout=1800)
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.slow
@needs_build
@pytest.mark.parametrize("name", [p.name for p in UNITS])
def test_every_unit_verifies_clean_in_the_image_root(built: Path, name: str) -> None:
    # Verified where its binaries, users and the units it names really are: the image's root.
    result = subprocess.run(["systemd-analyze", "verify", f"--root={built / 'rootfs'}",
                             "--man=no", "--generators=no", f"/etc/systemd/system/{name}"],
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.slow
@needs_build
def test_verify_does_complain_about_a_broken_unit(built: Path) -> None:
    broken = built / "rootfs/etc/systemd/system/medpass-broken-test.service"
    broken.write_text("[Service]\nExecStart=/usr/bin/no-such-program\nBogusKey=1\n")
    try:
        result = subprocess.run(["systemd-analyze", "verify", f"--root={built / 'rootfs'}",
                                 "--man=no", "--generators=no",
                                 "/etc/systemd/system/medpass-broken-test.service"],
                                capture_output=True, text=True)
    finally:
        broken.unlink()
    assert "BogusKey" in result.stderr and "no-such-program" in result.stderr


@pytest.mark.slow
@needs_build
@pytest.mark.parametrize("name", sorted(EXPOSURE_LIMITS))
def test_the_units_exposure_in_the_image_root(built: Path, name: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        figure = exposure(UNIT_DIR / name, built / "rootfs")
    assert figure <= EXPOSURE_LIMITS[name]


@pytest.mark.slow
@needs_build
def test_foot_accepts_its_configuration(built: Path) -> None:
    result = subprocess.run(["chroot", str(built / "rootfs"), "foot", "--check-config",
                             "--config=/etc/medpass-kiosk/foot.ini"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@needs_build
def test_the_kiosk_works_inside_the_image(built: Path) -> None:
    result = subprocess.run([str(IMAGE / "smoke"), "--rootfs", str(built / "rootfs")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "instances verified" in result.stdout and "smoke: OK" in result.stdout


@pytest.mark.slow
@needs_build
def test_the_image_listens_on_no_port_and_offers_no_login(built: Path) -> None:
    root = built / "rootfs"
    for program in ("usr/sbin/sshd", "usr/sbin/avahi-daemon", "usr/bin/sudo",
                    "usr/libexec/udisks2/udisksd"):
        assert not (root / program).exists(), program
    # Every socket unit enabled anywhere listens on a path, never on a port or an address.
    wants = [*root.glob("etc/systemd/system/*.wants/*.socket"),
             *root.glob("usr/lib/systemd/system/*.wants/*.socket"),
             *root.glob("lib/systemd/system/*.wants/*.socket")]
    assert wants
    for link in wants:
        target = link.resolve() if link.is_symlink() else link
        text = (root / target.relative_to("/")).read_text() if target.is_absolute() and \
            not str(target).startswith(str(root)) else target.read_text()
        for line in text.splitlines():
            if line.startswith(("ListenStream=", "ListenDatagram=", "ListenSequentialPacket=")):
                address = line.split("=", 1)[1]
                assert address.startswith(("/", "@")), f"{link.name} listens on {address}"
    resolved = (root / "etc/systemd/resolved.conf.d/medpass-kiosk.conf").read_text()
    assert "DNSStubListener=no" in resolved and "LLMNR=no" in resolved
    for masked in ("getty@.service", "serial-getty@.service", "autovt@.service",
                   "systemd-logind.service", "ctrl-alt-del.target"):
        assert os.readlink(root / "etc/systemd/system" / masked) == "/dev/null", masked
    passwd = {line.split(":")[0]: line.split(":") for line in
              (root / "etc/passwd").read_text().splitlines()}
    assert passwd["kiosk"][6] == "/usr/sbin/nologin" and passwd["kiosk"][5] == "/nonexistent"
    assert (root / "etc/machine-id").read_text() == ""
    assert os.readlink(root / "etc/resolv.conf") == "../run/systemd/resolve/resolv.conf"


@pytest.mark.slow
@needs_build
def test_the_disk_image_has_boot_root_and_data_partitions(built: Path) -> None:
    conf = image_conf()
    disk = built / "medpass-kiosk-amd64.img"
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    parts = table["partitions"]
    assert [p["type"] for p in parts] == ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                                          "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                                          "0FC63DAF-8483-4772-8E79-3D69D8477DE4"]
    assert parts[2]["size"] * 512 == int(conf["DATA_MIB"]) << 20
    esp = f"{disk}@@{parts[0]['start'] * 512}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(["mdir", "-/", "-b", "-i", esp, "::"], capture_output=True,
                             text=True, env=env, check=True).stdout
    for path in ("::/EFI/BOOT/BOOTX64.EFI", "::/medpass/vmlinuz", "::/medpass/initrd.img"):
        assert path in listing.split(), listing
    entry = subprocess.run(["mtype", "-i", esp, "::/loader/entries/medpass.conf"],
                           capture_output=True, text=True, env=env, check=True).stdout
    assert f"root=LABEL={conf['ROOT_LABEL']} ro" in entry
    loader = subprocess.run(["mtype", "-i", esp, "::/loader/loader.conf"], capture_output=True,
                            text=True, env=env, check=True).stdout
    assert "editor no" in loader
    label = subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL",
                            str(built / "root.ext4")], capture_output=True, text=True)
    assert label.stdout.strip() == conf["ROOT_LABEL"]
