"""README.TXT written beside the package on the patient's stick: English and Chinese.

It must hold no patient data (it is readable without the passphrase), so it is the same text
for everyone of a kiosk: what this is, how to open it (OPEN_IMAGES.html first, then the free
tools), the fingerprint of the key that signed the manifest, and how to load the images.
"""

from __future__ import annotations

_ENCRYPTED_EN = """\
MEDICAL IMAGES - HOW TO OPEN THIS FOLDER
========================================

This folder holds a copy of your medical images (DICOM) and reports, made by a
MedPass Kiosk. They are in IMAGES.zip (large copies are split into IMAGES.zip.001,
IMAGES.zip.002, ... - keep all parts together in one folder).

THE EASY WAY: double-click OPEN_IMAGES.html. It opens in any current web browser
(Chrome, Edge, Firefox, Safari) with nothing to install and no internet needed.
Choose IMAGES.zip (or all of its parts together), then type the PASSPHRASE printed
on the slip you were given at the desk, exactly as printed, including the dashes.
The page shows the images and the reports, checks that nothing was changed since
the kiosk signed them, and can save an unencrypted copy for a PACS.

The kiosk signed this copy with the key whose fingerprint is
{fingerprint}
The same fingerprint is printed on your slip and shown by OPEN_IMAGES.html.

IMAGES.zip is encrypted (AES-256). Without a browser, these free tools open it with
the passphrase:
  Windows : 7-Zip (www.7-zip.org) - right-click IMAGES.zip (or IMAGES.zip.001),
            7-Zip > Extract Here, enter the passphrase.
  macOS   : Keka or The Unarchiver (free in the App Store) - double-clicking in
            Finder does NOT work for encrypted archives.
  Linux   : 7z x IMAGES.zip   (package p7zip-full or 7zip)

Inside you will find:
  DICOMDIR        the index of the images - open this in a DICOM viewer
  PT000000/...    the images, exactly as the hospital recorded them
  REPORTS/        the original report and its certified English translation (PDF)
  MANIFEST.JSON   a list of every file with its SHA-256 checksum
  MANIFEST.JWS    the kiosk's signature of MANIFEST.JSON

LICENSES.TXT lists the free software inside OPEN_IMAGES.html and its licences.

For your doctor: open DICOMDIR with any DICOM viewer (for example Weasis, Horos,
OsiriX, RadiAnt, MicroDicom) or import the extracted folder into your PACS
("Import from media / DICOMDIR"). Reports are also stored as DICOM Encapsulated
PDF in the same study, so a PACS import brings them along.
"""

_PLAIN_EN = """\
MEDICAL IMAGES - HOW TO OPEN THIS FOLDER
========================================

This folder holds a copy of your medical images (DICOM) and reports, made by a
MedPass Kiosk. It is NOT encrypted (you asked for an unencrypted copy).

THE EASY WAY: double-click OPEN_IMAGES.html (any current web browser, nothing to
install, no internet) and choose this folder with "Unencrypted copy: choose its
folder". The page shows the images and reports and checks them against the
kiosk's signature.

  DICOMDIR        the index of the images - open this in a DICOM viewer
  PT000000/...    the images, exactly as the hospital recorded them
  REPORTS/        the original report and its certified English translation (PDF)
  MANIFEST.JSON   a list of every file with its SHA-256 checksum
  MANIFEST.JWS    the kiosk's signature of MANIFEST.JSON, made with the key whose
                  fingerprint is (also printed on your slip)
{fingerprint}

For your doctor: open DICOMDIR with any DICOM viewer (for example Weasis, Horos,
OsiriX, RadiAnt, MicroDicom) or import this folder into your PACS
("Import from media / DICOMDIR").
"""

_ENCRYPTED_ZH = """\
医学影像 - 如何打开本文件夹
==========================

本文件夹由 MedPass 自助终端制作，内含您的医学影像（DICOM）及报告，保存在
IMAGES.zip 中（文件较大时会分卷为 IMAGES.zip.001、IMAGES.zip.002 ……，请将所有
分卷放在同一文件夹内）。

最简单的方法：双击 OPEN_IMAGES.html。它可在任何新版浏览器（Chrome、Edge、Firefox、
Safari）中打开，无需安装任何软件，也无需联网。选择 IMAGES.zip（或同时选择全部分卷），
然后输入服务台交给您的小票上印的密码，请按小票原样输入（包括短横线）。页面会显示
影像和报告，核对自终端签名以来没有任何文件被改动，并可另存一份未加密的副本供 PACS
导入。

本副本由终端用以下指纹的密钥签名：
{fingerprint}
您的小票上印有同一指纹，OPEN_IMAGES.html 也会显示。

IMAGES.zip 已加密（AES-256）。不用浏览器时，可用以下免费工具输入密码打开：
  Windows：7-Zip（www.7-zip.org）——右键点击 IMAGES.zip（或 IMAGES.zip.001），
           选择 7-Zip > 解压到当前文件夹，输入密码。
  macOS  ：Keka 或 The Unarchiver（App Store 免费）——在访达中双击无法打开加密文件。
  Linux  ：7z x IMAGES.zip（软件包 p7zip-full 或 7zip）

解压后内容：
  DICOMDIR        影像索引——请用 DICOM 阅片软件打开此文件
  PT000000/...    影像原始文件，与医院记录完全一致
  REPORTS/        中文原始报告及经认证的英文翻译（PDF）
  MANIFEST.JSON   所有文件清单及 SHA-256 校验值
  MANIFEST.JWS    终端对 MANIFEST.JSON 的签名

LICENSES.TXT 列出 OPEN_IMAGES.html 中包含的免费软件及其许可证。

给医生：可用任何 DICOM 阅片软件（如 Weasis、Horos、OsiriX、RadiAnt、MicroDicom）
打开 DICOMDIR，或将解压后的文件夹导入 PACS（“从介质/DICOMDIR 导入”）。报告也以
DICOM 封装 PDF 的形式保存在同一检查中，导入 PACS 时会一并导入。
"""

_PLAIN_ZH = """\
医学影像 - 如何打开本文件夹
==========================

本文件夹由 MedPass 自助终端制作，内含您的医学影像（DICOM）及报告。本副本未加密
（按您的要求）。

最简单的方法：双击 OPEN_IMAGES.html（任何新版浏览器，无需安装软件，无需联网），
点击“未加密副本：选择其文件夹”并选择本文件夹。页面会显示影像和报告，并按终端签名
核对文件。

  DICOMDIR        影像索引——请用 DICOM 阅片软件打开此文件
  PT000000/...    影像原始文件，与医院记录完全一致
  REPORTS/        中文原始报告及经认证的英文翻译（PDF）
  MANIFEST.JSON   所有文件清单及 SHA-256 校验值
  MANIFEST.JWS    终端对 MANIFEST.JSON 的签名，签名密钥的指纹为（小票上也有）：
{fingerprint}

给医生：可用任何 DICOM 阅片软件（如 Weasis、Horos、OsiriX、RadiAnt、MicroDicom）
打开 DICOMDIR，或将本文件夹导入 PACS（“从介质/DICOMDIR 导入”）。
"""


def fingerprint_lines(fingerprint: str | None, indent: str = "    ") -> str:
    """The key fingerprint on two lines of eight groups (it fits a slip and Notepad)."""
    if not fingerprint:
        return indent + "(not signed)"
    groups = fingerprint.split()
    return "\n".join(indent + " ".join(groups[i:i + 8]) for i in range(0, len(groups), 8))


def readme_text(*, encrypted: bool, fingerprint: str | None = None) -> str:
    """The README.TXT text (CRLF line ends so Windows Notepad shows it right).

    ``fingerprint`` is the signing key's (no patient data: the same on every stick of a kiosk).
    """
    text = (_ENCRYPTED_EN + "\n\n" + _ENCRYPTED_ZH) if encrypted else (
        _PLAIN_EN + "\n\n" + _PLAIN_ZH)
    text = text.replace("{fingerprint}", fingerprint_lines(fingerprint))
    return text.replace("\n", "\r\n")
