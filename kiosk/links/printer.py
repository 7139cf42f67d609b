"""The ESC/POS receipt printer: a small interface, a USB implementation and a fake.

The only module that imports python-escpos and pyusb. Both implementations lay the slip out
with the same python-escpos code (:func:`write_slip`); the USB one sends it through
``escpos.printer.Usb`` and the fake captures the bytes with ``escpos.printer.Dummy``.

Every failure a desk sees (no printer, printer off or jammed, paper out, unplugged mid-slip)
becomes a :class:`~kiosk.errors.PrinterError` with a message for the coordinator; the kiosk
carries on without the slip.

Chinese text: ESC/POS printers sold in China usually have a GB18030 font (entered with
``FS &``), others have none. ``printer.chinese = "image"`` (the default) draws the Chinese
lines with a CJK font into a raster image (``GS v 0``), which every printer prints;
``"gb18030"`` sends the text itself for printers known to have the font. With no CJK font
installed the image mode falls back to GB18030 text and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import usb.core
import usb.util
from escpos.constants import (
    QR_ECLEVEL_M,
    RT_MASK_NOPAPER,
    RT_MASK_ONLINE,
    RT_STATUS_ONLINE,
    RT_STATUS_PAPER,
)
from escpos.escpos import Escpos
from escpos.exceptions import DeviceNotFoundError
from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy, Usb

from kiosk.config import PrinterSettings
from kiosk.errors import (
    PrinterError,
    PrinterOfflineError,
    PrinterOutOfPaperError,
    PrinterUnavailableError,
)
from kiosk.links import qr
from kiosk.links import slip as slip_text
from kiosk.links.slip import Slip
from kiosk.links.text_raster import find_cjk_font, render_lines

#: ESC/POS: FS & enters the double-byte (GB18030 on Chinese models) mode, FS . leaves it.
CHINESE_ON, CHINESE_OFF = b"\x1c&", b"\x1c."
#: USB interface class of printers.
USB_CLASS_PRINTER = 7
#: Makers of ESC/POS receipt printers whose USB interface is often vendor-specific (0xff)
#: rather than printer class; a device of theirs with a bulk OUT endpoint counts as a printer.
KNOWN_VENDORS = {
    0x04B8: "Epson", 0x0519: "Star Micronics", 0x1504: "Bixolon", 0x154F: "SNBC",
    0x0DD4: "Custom", 0x0FE6: "ICS (Xprinter/Rongta clones)", 0x0416: "Winbond (POS-58 clones)",
    0x28E9: "GD32 (58/80 mm clones)",
}
_VENDOR_SPECIFIC = 0xFF
# libusb errno values that mean "cannot open" rather than "did not print".
_EACCES, _EBUSY = 13, 16


@dataclass(frozen=True)
class PrintReport:
    """What happened when a slip printed."""

    printer: str
    warnings: tuple[str, ...] = ()


class ReceiptPrinter(Protocol):
    """Prints patient slips."""

    def print_slip(self, slip: Slip) -> PrintReport:
        """Print ``slip`` and return how it went.

        Raises
        ------
        PrinterUnavailableError
            No printer attached, or it cannot be opened (permissions, libusb missing).
        PrinterOfflineError
            The printer does not take data: off, cover open, jammed, unplugged mid-slip.
        PrinterOutOfPaperError
            The printer reports its paper roll empty.
        """
        ...


@dataclass(frozen=True)
class SlipLayout:
    """How the slip is drawn on a particular printer."""

    width_dots: int = 384
    qr: str = "native"
    chinese: str = "image"
    cjk_font: Path | None = None

    @classmethod
    def from_settings(cls, settings: PrinterSettings) -> SlipLayout:
        """The layout for the configured printer (finds a CJK font for image mode)."""
        font = find_cjk_font(settings.cjk_font) if settings.chinese == "image" else None
        return cls(width_dots=settings.width_dots, qr=settings.qr, chinese=settings.chinese,
                   cjk_font=font)


@dataclass
class _Writer:
    device: Escpos
    layout: SlipLayout
    warnings: list[str] = field(default_factory=list)

    def english(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.device.textln(line)

    def chinese(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        if self.layout.chinese == "image" and self.layout.cjk_font is not None:
            self.device.image(render_lines(lines, self.layout.cjk_font,
                                           width=self.layout.width_dots))
            return
        # ESC/POS text is sent unencoded through _raw: python-escpos's encoder knows no GB18030.
        for line in lines:
            self.device._raw(CHINESE_ON + line.encode("gb18030") + b"\n" + CHINESE_OFF)

    def qr(self, link: str) -> None:
        # Dots per module: as large as fits with a 4-module margin each side, at most 8 (1 mm).
        dots = max(1, min(8, self.layout.width_dots // (qr.modules(link) + 8)))
        if self.layout.qr == "native":
            # GS ( k: the printer draws the code itself, crisp at its own resolution.
            self.device.qr(link, ec=QR_ECLEVEL_M, size=dots, native=True)
            self.device.ln()
        else:
            self.device.image(qr.image(link, box_size=dots, border=2), center=True)


def write_slip(device: Escpos, slip: Slip, layout: SlipLayout) -> list[str]:
    """Lay ``slip`` out on a python-escpos device; return warnings (font fallbacks).

    Raises whatever the device raises while writing; callers translate it.
    """
    # An instance-level profile override: the shared default profile has no paper width, and
    # python-escpos then prints a notice to stdout (where ``kiosk qr`` puts its link).
    device.profile.profile_data = {**device.profile.profile_data, "media": {
        "dpi": 203, "width": {"mm": "Unknown", "pixels": layout.width_dots}}}
    w = _Writer(device, layout)
    if layout.chinese == "image" and layout.cjk_font is None:
        w.warnings.append("No font with Chinese characters is installed (fonts-droid-fallback "
                          "or fonts-noto-cjk); Chinese was sent as GB18030 text, which only "
                          "printers with a Chinese font print.")
    device.hw("INIT")
    device.set(align="center", bold=True, double_height=True, double_width=True)
    device.textln(slip_text.TITLE)
    device.set(align="center", bold=False, normal_textsize=True)
    w.chinese([slip_text.TITLE_ZH])
    en, zh = slip_text.case_lines(slip)
    device.set(bold=True)
    w.english(en)
    device.set(bold=False)
    w.chinese(zh)
    w.qr(slip.link)
    en, zh = slip_text.link_lines(slip)
    device.set(align="left")
    w.english(en)
    w.chinese(zh)
    if slip.passcode is not None:
        _secret(device, w, "Link passcode:", "链接密码：", slip_text.passcode_text(slip.passcode))
    if slip.passphrase is not None:
        _secret(device, w, "USB passphrase:", "U盘密码：", slip.passphrase)
        en, zh = slip_text.usb_lines(slip)
        w.english(en)
        w.chinese(zh)
    device.ln()
    en, zh = slip_text.privacy_lines()
    w.english(en)
    w.chinese(zh)
    device.cut()
    return w.warnings


def _secret(device: Any, w: _Writer, title: str, title_zh: str, value: str) -> None:
    """A titled value the patient types later, centred and large."""
    device.ln()
    device.set(align="center")
    device.textln(title)
    w.chinese([title_zh])
    device.set(bold=True, double_height=True)
    device.textln(value)
    device.set(align="left", bold=False, normal_textsize=True)


class DummyReceiptPrinter:
    """A fake printer: lays slips out with python-escpos's ``Dummy`` and keeps the bytes.

    Parameters
    ----------
    layout : SlipLayout
        How slips are drawn.
    state : str
        ``"ready"``, or a fault to simulate: ``"absent"``, ``"offline"``, ``"no-paper"``.
    """

    def __init__(self, layout: SlipLayout | None = None, state: str = "ready") -> None:
        self.layout = layout or SlipLayout()
        self.state = state
        self.slips: list[bytes] = []

    @property
    def output(self) -> bytes:
        """The bytes of the last slip printed (empty before the first)."""
        return self.slips[-1] if self.slips else b""

    def print_slip(self, slip: Slip) -> PrintReport:
        """Print ``slip`` into memory (see :class:`ReceiptPrinter`)."""
        if self.state == "absent":
            raise PrinterUnavailableError("No receipt printer is connected.")
        if self.state == "offline":
            raise PrinterOfflineError("The receipt printer does not respond.")
        if self.state == "no-paper":
            raise PrinterOutOfPaperError("The receipt printer is out of paper.")
        device = Dummy()
        warnings = write_slip(device, slip, self.layout)
        self.slips.append(device.output)
        return PrintReport(printer="dummy", warnings=tuple(warnings))


@dataclass(frozen=True)
class UsbPrinterInfo:
    """A USB device that looks like a receipt printer, with the endpoints to talk to it."""

    vendor_id: int
    product_id: int
    out_ep: int
    in_ep: int | None

    def __str__(self) -> str:
        return f"USB {self.vendor_id:04x}:{self.product_id:04x}"


def _bulk_endpoints(interface: Any) -> tuple[int | None, int | None]:
    out_ep = in_ep = None
    for ep in interface:
        if usb.util.endpoint_type(ep.bmAttributes) != usb.util.ENDPOINT_TYPE_BULK:
            continue
        if usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_OUT:
            out_ep = out_ep if out_ep is not None else ep.bEndpointAddress
        else:
            in_ep = in_ep if in_ep is not None else ep.bEndpointAddress
    return out_ep, in_ep


def _printer_interface(device: Any, *, any_class: bool) -> UsbPrinterInfo | None:
    """The device's printer interface endpoints, or None if it has none."""
    known = device.idVendor in KNOWN_VENDORS
    for config in device:
        for interface in config:
            cls = interface.bInterfaceClass
            if not (any_class or cls == USB_CLASS_PRINTER
                    or (known and cls == _VENDOR_SPECIFIC)):
                continue
            out_ep, in_ep = _bulk_endpoints(interface)
            if out_ep is not None:
                return UsbPrinterInfo(device.idVendor, device.idProduct, out_ep, in_ep)
    return None


def find_usb_printer(vendor_id: int = 0, product_id: int = 0) -> UsbPrinterInfo:
    """The configured USB printer, or the first one found when ``vendor_id`` is 0.

    Autodetection takes a device with a USB printer-class interface, or a vendor-specific
    interface from a known receipt-printer maker, that has a bulk OUT endpoint.

    Raises
    ------
    PrinterUnavailableError
        No such device, or libusb is not installed.
    """
    try:
        if vendor_id:
            match = {"idVendor": vendor_id} | ({"idProduct": product_id} if product_id else {})
            devices = list(usb.core.find(find_all=True, **match) or [])
        else:
            devices = list(usb.core.find(find_all=True) or [])
    except usb.core.NoBackendError:
        raise PrinterUnavailableError(
            "USB printing needs libusb (Debian package libusb-1.0-0), which is not "
            "installed.") from None
    except usb.core.USBError as exc:
        raise PrinterUnavailableError(f"The USB devices cannot be listed ({exc}).") from None
    for device in devices:
        info = _printer_interface(device, any_class=bool(vendor_id))
        if info is not None:
            return info
    if vendor_id:
        raise PrinterUnavailableError(
            f"The receipt printer {vendor_id:04x}:{product_id:04x} (printer.vendor_id/"
            "product_id) is not connected. Check the USB cable and that it is switched on.")
    raise PrinterUnavailableError(
        "No receipt printer is connected. Plug it in and switch it on, or set "
        "printer.vendor_id and printer.product_id if it is not recognised.")


class UsbReceiptPrinter:
    """An ESC/POS printer on USB (python-escpos ``Usb`` over pyusb), found anew per slip.

    Looking the printer up for every slip means one plugged in after start-up, or re-plugged,
    just works.
    """

    def __init__(self, settings: PrinterSettings, layout: SlipLayout | None = None) -> None:
        self.settings = settings
        self.layout = layout or SlipLayout.from_settings(settings)

    def print_slip(self, slip: Slip) -> PrintReport:
        """Print ``slip`` (see :class:`ReceiptPrinter`)."""
        if not self.settings.enabled:
            raise PrinterUnavailableError("Printing is switched off (printer.enabled = false).")
        info = find_usb_printer(self.settings.vendor_id, self.settings.product_id)
        device = Usb(info.vendor_id, info.product_id, timeout=self.settings.timeout_ms,
                     in_ep=info.in_ep or 0x82, out_ep=info.out_ep)
        try:
            device.open()
        except (DeviceNotFoundError, usb.core.USBError) as exc:
            raise _open_error(info, exc) from None
        try:
            if info.in_ep is not None:
                _check_status(device, info)
            warnings = write_slip(device, slip, self.layout)
        except PrinterError:
            raise
        except usb.core.USBTimeoutError:
            raise PrinterOfflineError(
                f"The receipt printer ({info}) stopped taking data for "
                f"{self.settings.timeout_ms / 1000:g} s: check that it is on, its cover is "
                "closed and the paper is loaded. The slip may be incomplete.") from None
        except usb.core.USBError as exc:
            if exc.errno in (_EACCES, _EBUSY):  # python-escpos only logs these at open time
                raise _open_error(info, exc) from None
            raise PrinterOfflineError(
                f"The receipt printer ({info}) failed while printing ({exc}); it may have been "
                "unplugged. The slip may be incomplete.") from None
        except (EscposError, ValueError) as exc:  # e.g. a QR too large for the paper
            raise PrinterError(f"The slip could not be laid out for {info}: {exc}.") from None
        finally:
            with contextlib.suppress(usb.core.USBError):  # unplugged: nothing to release
                device.close()
        return PrintReport(printer=str(info), warnings=tuple(warnings))


def _open_error(info: UsbPrinterInfo, exc: Exception) -> PrinterUnavailableError:
    errno = getattr(exc, "errno", None)
    if errno == _EACCES or "Access denied" in str(exc):
        return PrinterUnavailableError(
            f"The kiosk may not use the receipt printer ({info}): give its user access to the "
            "device with a udev rule (see udev/).")
    if errno == _EBUSY:
        return PrinterUnavailableError(f"The receipt printer ({info}) is in use by another "
                                       "program.")
    return PrinterUnavailableError(f"The receipt printer ({info}) cannot be opened "
                                   f"({str(exc).strip() or type(exc).__name__}).")


def _check_status(device: Usb, info: UsbPrinterInfo) -> None:
    """Ask for paper and online status (DLE EOT); a printer that does not answer may print."""
    try:
        paper = bytes(device.query_status(RT_STATUS_PAPER))
        online = bytes(device.query_status(RT_STATUS_ONLINE))
    except (usb.core.USBError, NotImplementedError):
        return  # many cheap printers never answer status requests
    # Checked first: an empty roll also sets the offline bit, and "paper" is the useful advice.
    if paper and paper[0] & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
        raise PrinterOutOfPaperError(f"The receipt printer ({info}) is out of paper: load a "
                                     "new roll and print again.")
    if online and online[0] & RT_MASK_ONLINE:
        raise PrinterOfflineError(f"The receipt printer ({info}) is offline: check that its "
                                  "cover is closed and it shows no error light.")


def build_printer(settings: PrinterSettings) -> ReceiptPrinter:
    """The real printer for the configuration (composition root helper)."""
    return UsbReceiptPrinter(settings)
