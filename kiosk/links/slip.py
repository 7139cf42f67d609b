"""What the patient's receipt slip says, in English and Chinese (no printer code here).

The slip carries the case number, the QR of the cloud link with its last valid day, the USB
passphrase when an encrypted export happened, and short instructions. :mod:`kiosk.links.printer`
lays it out for ESC/POS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Slip:
    """The facts printed on one slip."""

    case_id: str
    link: str
    #: Last day the link works, ``YYYY-MM-DD``.
    expiry_date: str
    #: The patient USB passphrase; None when no encrypted export happened.
    passphrase: str | None = None
    #: Fingerprint of the key that signs the stick's manifest (README.TXT and the page show it).
    fingerprint: str | None = None
    #: The link's 6-digit passcode (``link.passcode``); never in the QR.
    passcode: str | None = None


TITLE = "MedPass"
TITLE_ZH = "您的医学影像"


def case_lines(slip: Slip) -> tuple[list[str], list[str]]:
    """English and Chinese lines naming the case."""
    return [f"Case number: {slip.case_id}"], [f"病例号：{slip.case_id}"]


def link_lines(slip: Slip) -> tuple[list[str], list[str]]:
    """What the QR is for and how long it works (printed under the QR)."""
    en = [
        "Scan the QR code to view your images and reports online.",
        f"Link valid until {slip.expiry_date}.",
        "It works as soon as the kiosk has uploaded your images.",
    ]
    zh = [
        "扫描二维码，在线查看您的影像和报告。",
        f"链接有效期至 {slip.expiry_date}。",
        "影像上传完成后，链接即可打开。",
    ]
    if slip.passcode is not None:
        en.append("The page asks for the link passcode below; a few wrong tries lock it.")
        zh.append("打开时需输入下方的链接密码；多次输错将锁定链接。")
    return en, zh


def passcode_text(passcode: str) -> str:
    """The passcode as printed and shown: two groups of three digits (``123 456``)."""
    return f"{passcode[:3]} {passcode[3:]}"


def usb_lines(slip: Slip) -> tuple[list[str], list[str]]:
    """How to open the encrypted USB copy (only when there is a passphrase)."""
    if slip.passphrase is None:
        return [], []
    en = [
        "Your USB stick holds an encrypted archive of your images and reports. Open "
        "OPEN_IMAGES.html on it in any web browser (nothing to install) and enter the "
        "passphrase above; 7-Zip, Keka or The Unarchiver also open it. README.TXT on the "
        "stick explains more.",
    ]
    zh = [
        "您的U盘中是加密的影像和报告压缩文件。请用任意浏览器打开U盘中的 OPEN_IMAGES.html"
        "（无需安装软件），输入上面的密码；也可用 7-Zip、Keka 或 The Unarchiver 打开。"
        "详见U盘中的 README.TXT。",
    ]
    if slip.fingerprint:
        groups = slip.fingerprint.split()
        key = [" ".join(groups[i:i + 8]) for i in range(0, len(groups), 8)]
        en += ["The kiosk signed the stick's contents with the key whose fingerprint is:", *key]
        zh += ["终端签名密钥的指纹：", *key]
    return en, zh


def privacy_lines() -> tuple[list[str], list[str]]:
    """The closing warning: the slip itself is the key."""
    return (["Keep this slip private: anyone holding it can open your images."],
            ["请妥善保管此凭条：持有者可查看您的影像。"])
