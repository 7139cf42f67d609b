"""The patient slip on an ESC/POS receipt printer, and every way a printer lets the desk down.

One contract, two printers: the fake (python-escpos ``Dummy``) and the real USB printer, whose
python-escpos ``Usb`` path runs unchanged down to a stand-in pyusb device that records the bytes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import usb.core
from PIL import Image

from kiosk.config import PrinterSettings
from kiosk.errors import (
    PrinterError,
    PrinterOfflineError,
    PrinterOutOfPaperError,
    PrinterUnavailableError,
)
from kiosk.links.printer import (
    CHINESE_ON,
    DummyReceiptPrinter,
    ReceiptPrinter,
    SlipLayout,
    UsbReceiptPrinter,
    find_usb_printer,
)
from kiosk.links.slip import Slip
from kiosk.links.text_raster import find_cjk_font
from kiosk.service import KioskService
from tests.conftest import make_instance

Run = Callable[..., tuple[int, str, str]]
LINK = "https://link.medpass.example/s/" + "eyJhbGciOiJFZERTQSJ9." * 16
SLIP = Slip(case_id="C20261127-7KQM", link=LINK, expiry_date="2026-12-27",
            passphrase="K7QM-4XRT-9HWC-PN3E-Z5YB")
STATES = ["ready", "absent", "offline", "no-paper"]
# DLE EOT n status replies: 0x12 = all fixed bits, nothing wrong; 0x72 = paper end sensors.
STATUS_OK, STATUS_NO_PAPER = b"\x12", b"\x72"


# --- a stand-in pyusb device ----------------------------------------------------------------

def _endpoint(address: int) -> Any:
    return SimpleNamespace(bEndpointAddress=address, bmAttributes=0x02)  # bulk


class _Interface(list):  # type: ignore[type-arg]
    def __init__(self, cls: int, *endpoints: int) -> None:
        super().__init__(_endpoint(e) for e in endpoints)
        self.bInterfaceClass = cls


class _Libusb1Backend:
    """Looks like pyusb's libusb1 backend, so python-escpos runs its kernel-driver checks."""


_Libusb1Backend.__module__ = "usb.backend.libusb1"


class FakeUsbDevice:
    """Enough of ``usb.core.Device`` for python-escpos and the kiosk's autodetection."""

    def __init__(self, vendor: int, product: int, interface: _Interface,
                 state: str = "ready") -> None:
        self.idVendor, self.idProduct = vendor, product
        self._configs = [[interface]]
        self.state = state
        self.written = bytearray()
        self.backend = _Libusb1Backend()
        self.kernel_driver_detached = False
        self._ctx = SimpleNamespace(dispose=lambda _dev: None)  # usb.util.dispose_resources

    def __iter__(self) -> Iterator[list[_Interface]]:
        return iter(self._configs)

    def is_kernel_driver_active(self, interface: int) -> bool:
        return not self.kernel_driver_detached  # usblp holds a printer until detached

    def detach_kernel_driver(self, interface: int) -> None:
        self.kernel_driver_detached = True

    def set_configuration(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def write(self, endpoint: int, data: bytes, timeout: int | None = None) -> int:
        assert endpoint == self._configs[0][0][0].bEndpointAddress
        if self.state == "offline":
            raise usb.core.USBTimeoutError("Operation timed out", errno=110)
        if self.state == "denied":
            raise usb.core.USBError("Access denied (insufficient permissions)", errno=13)
        self.written += bytes(data)
        return len(data)

    def read(self, endpoint: int, size: int, timeout: int | None = None) -> bytes:
        if self.written.endswith(b"\x10\x04\x04"):  # paper sensor status
            return STATUS_NO_PAPER if self.state == "no-paper" else STATUS_OK
        return STATUS_OK


def _install_usb(monkeypatch: pytest.MonkeyPatch, devices: list[FakeUsbDevice]) -> None:
    def find(find_all: bool = False, **match: int) -> Any:
        hits = [d for d in devices
                if all(getattr(d, k) == v for k, v in match.items() if k.startswith("id"))]
        return hits if find_all else (hits[0] if hits else None)

    monkeypatch.setattr(usb.core, "find", find)


# --- the contract, run against both printers --------------------------------------------------

@dataclass
class Rig:
    """Builds a printer in a given state and shows what reached the paper."""

    make: Callable[[str], ReceiptPrinter]
    written: Callable[[], bytes]


@pytest.fixture(params=["dummy", "usb"])
def rig(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Rig:
    layout = SlipLayout(cjk_font=find_cjk_font())
    if request.param == "dummy":
        made: list[DummyReceiptPrinter] = []

        def make_dummy(state: str) -> ReceiptPrinter:
            made.append(DummyReceiptPrinter(layout, state=state))
            return made[-1]

        return Rig(make_dummy, lambda: made[-1].output)
    devices: list[FakeUsbDevice] = []

    def make_usb(state: str) -> ReceiptPrinter:
        if state != "absent":
            devices.append(FakeUsbDevice(0x0416, 0x5011, _Interface(7, 0x02, 0x81), state))
        _install_usb(monkeypatch, devices)
        return UsbReceiptPrinter(PrinterSettings(), layout)

    return Rig(make_usb, lambda: bytes(devices[-1].written))


def test_the_slip_carries_qr_expiry_case_passphrase_and_both_languages(rig: Rig) -> None:
    report = rig.make("ready").print_slip(SLIP)
    out = rig.written()
    # GS ( k: store the link in the QR symbol (cn=1 fn=P m=0), then print it (fn=Q).
    store = b"\x1d(k" + (len(LINK) + 3).to_bytes(2, "little") + b"1P0" + LINK.encode()
    assert store in out and b"\x1d(k\x03\x001Q0" in out
    for text in (SLIP.case_id, SLIP.expiry_date, SLIP.passphrase or "", "Scan the QR code",
                 "USB passphrase", "7-Zip", "Keep this slip private"):
        assert text.encode() in out, text
    assert b"\x1dv0" in out  # the Chinese lines as a raster image
    assert out.index(b"\x1b@") < out.index(b"MedPass")  # reset before the first line
    assert out.endswith(b"\x1dV\x00")  # and cut at the end
    assert report.warnings == ()


@pytest.mark.parametrize(("state", "error"), [
    ("absent", PrinterUnavailableError),
    ("offline", PrinterOfflineError),
    ("no-paper", PrinterOutOfPaperError),
])
def test_a_missing_offline_or_empty_printer_is_a_clear_message_not_a_crash(
        rig: Rig, state: str, error: type[PrinterError]) -> None:
    with pytest.raises(error) as err:
        rig.make(state).print_slip(SLIP)
    assert err.value.title and len(err.value.text) > 20


def test_a_printer_the_kiosk_user_may_not_open_points_at_the_udev_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _install_usb(monkeypatch, [FakeUsbDevice(0x0416, 0x5011, _Interface(7, 0x02), "denied")])
    with pytest.raises(PrinterUnavailableError, match="udev"):
        UsbReceiptPrinter(PrinterSettings(chinese="gb18030")).print_slip(SLIP)


# --- layout choices ----------------------------------------------------------------------------

def rasters(out: bytes) -> Image.Image:
    """Every GS v 0 raster image in an ESC/POS stream, stacked as printed."""
    parts, i = [], out.find(b"\x1dv0")
    while i >= 0:
        wb = int.from_bytes(out[i + 4:i + 6], "little")
        h = int.from_bytes(out[i + 6:i + 8], "little")
        data = out[i + 8:i + 8 + wb * h]
        parts.append(Image.frombytes("1", (wb * 8, h), data).point(lambda v: 255 - v))
        i = out.find(b"\x1dv0", i + 8 + wb * h)
    sheet = Image.new("L", (max(p.width for p in parts) + 40, sum(p.height for p in parts) + 40),
                      255)
    y = 20
    for p in parts:
        sheet.paste(p.convert("L"), (20, y))
        y += p.height
    return sheet


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg is not installed")
def test_a_printer_without_native_qr_gets_an_image_that_scans(tmp_path: Path) -> None:
    printer = DummyReceiptPrinter(SlipLayout(qr="image", cjk_font=find_cjk_font()))
    printer.print_slip(SLIP)
    assert b"\x1d(k" not in printer.output
    rasters(printer.output).save(tmp_path / "slip.png")
    proc = subprocess.run(["zbarimg", "--quiet", "--raw", str(tmp_path / "slip.png")],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == LINK


def test_chinese_goes_as_gb18030_text_to_printers_with_a_chinese_font() -> None:
    printer = DummyReceiptPrinter(SlipLayout(chinese="gb18030"))
    printer.print_slip(SLIP)
    out = printer.output
    assert CHINESE_ON + "病例号：C20261127-7KQM".encode("gb18030") in out
    assert "U盘密码".encode("gb18030") in out and b"\x1dv0" not in out


def test_without_a_chinese_font_the_slip_still_prints_and_says_so() -> None:
    printer = DummyReceiptPrinter(SlipLayout(chinese="image", cjk_font=None))
    report = printer.print_slip(SLIP)
    assert "链接有效期至".encode("gb18030") in printer.output
    assert any("Chinese" in w for w in report.warnings)


def test_no_passphrase_no_usb_section() -> None:
    printer = DummyReceiptPrinter(SlipLayout(chinese="gb18030"))
    printer.print_slip(Slip(SLIP.case_id, LINK, SLIP.expiry_date))
    assert b"passphrase" not in printer.output and b"Scan the QR code" in printer.output


def test_autodetect_picks_the_receipt_printer_not_the_usb_stick(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stick = FakeUsbDevice(0x0781, 0x5567, _Interface(8, 0x02, 0x81))  # mass storage
    unknown = FakeUsbDevice(0x1234, 0x0001, _Interface(0xFF, 0x01))  # vendor class, unknown
    epson = FakeUsbDevice(0x04B8, 0x0E15, _Interface(0xFF, 0x03, 0x84))
    _install_usb(monkeypatch, [stick, unknown, epson])
    found = find_usb_printer()
    assert (found.vendor_id, found.out_ep, found.in_ep) == (0x04B8, 0x03, 0x84)
    assert find_usb_printer(0x1234, 0x0001).out_ep == 0x01  # configured ids: any class
    with pytest.raises(PrinterUnavailableError, match="04b8:0202"):
        find_usb_printer(0x04B8, 0x0202)


# --- through the service and the command line -------------------------------------------------

@pytest.fixture
def case_id(service: KioskService, tmp_path: Path) -> str:
    make_instance(tmp_path / "cd" / "IM1")
    return str(service.import_path(tmp_path / "cd", case_id="C20261127-7KQM")["case_id"])


def test_the_desk_prints_the_slip_for_a_case_and_audits_it_without_the_passphrase(
        service: KioskService, case_id: str) -> None:
    printer = DummyReceiptPrinter(SlipLayout(chinese="gb18030"))
    service.printer = printer
    service.print_slip(case_id, passphrase=SLIP.passphrase)
    link = service.case_link(case_id)
    assert link.url.encode() in printer.output and link.expiry_date.encode() in printer.output
    # The page on the stick first, and the fingerprint of the key that signed its manifest
    # (what README.TXT and the page show), in two lines of eight groups.
    groups = service.manifest_signer.fingerprint.split()
    assert b"OPEN_IMAGES.html" in printer.output
    for half in (groups[:8], groups[8:]):
        assert " ".join(half).encode() in printer.output
    service.printer = DummyReceiptPrinter(state="no-paper")
    with pytest.raises(PrinterOutOfPaperError):
        service.print_slip(case_id, passphrase=SLIP.passphrase)
    prints = [e["details"] for e in service.audit.entries() if e["action"] == "print"]
    assert [(p["ok"], p["passphrase"], p["token_id"]) for p in prints] == [
        (True, True, link.token_id), (False, True, link.token_id)]
    assert SLIP.passphrase not in service.locations.audit_file.read_text()


def test_kiosk_qr_print_without_a_printer_still_shows_the_link(
        run_cli: Run, case_id: str, tmp_path: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text("[printer]\nvendor_id = 0xfffe\nproduct_id = 0xfffd\n")
    code, out, err = run_cli("--config", str(cfg), "qr", case_id, "--print")
    assert code == 1 and "receipt printer" in err.lower()
    assert out.splitlines()[-1].startswith("https://link.medpass.example/s/")
