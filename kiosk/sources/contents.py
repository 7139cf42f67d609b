"""What a medium holds besides DICOM: pictures, viewer programs, PDFs — and what to say about it.

Hospitals sometimes hand out a disc of JPEG "film" pages, a Windows viewer and a PDF, but no
DICOM. Such a disc cannot give the home doctor the study; the coordinator must ask the hospital
for a DICOM export. The import report's ``no_dicom`` (when nothing importable was found), the
role check at insertion and the quirks report all use :func:`classify`. Names decide here (these
files were already sniffed and found not to be DICOM); nothing from a medium is ever run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

PICTURE_TYPES = frozenset({"jpg", "jpeg", "jpe", "jfif", "bmp", "png", "gif", "tif", "tiff",
                           "webp"})
VIEWER_TYPES = frozenset({"exe", "dll", "msi", "ocx", "com", "bat", "cmd", "jar", "app", "cab"})
AUTORUN_NAMES = frozenset({"autorun.inf", "autorun.exe", "autoplay.exe"})


@dataclass
class Contents:
    """Counts of the non-DICOM files on a medium, by what they are for a coordinator."""

    pictures: int = 0
    pdfs: list[str] = field(default_factory=list)
    viewer: int = 0  # program files: a hospital's DICOM viewer, usually Windows-only
    autorun: bool = False
    other: int = 0

    def to_json(self) -> dict[str, object]:
        """The report's form: counts, the PDF paths and whether a viewer/autorun is there."""
        return {"pictures": self.pictures, "pdfs": self.pdfs, "viewer": self.viewer,
                "autorun": self.autorun, "other": self.other}


def classify(paths: Iterable[str]) -> Contents:
    """Sort the paths of non-DICOM files into pictures, PDFs, viewer programs and the rest."""
    found = Contents()
    for path in paths:
        name = path.rpartition("/")[2].lower()
        ext = name.rpartition(".")[2] if "." in name else ""
        if name in AUTORUN_NAMES:
            found.autorun = True
            found.viewer += name != "autorun.inf"
        elif ext in PICTURE_TYPES:
            found.pictures += 1
        elif ext == "pdf":
            found.pdfs.append(path)
        elif ext in VIEWER_TYPES:
            found.viewer += 1
        else:
            found.other += 1
    return found


def describe(found: Contents) -> str:
    """A short English list of what the medium holds ("3 pictures, a viewer program, 1 PDF")."""
    parts = []
    if found.pictures:
        parts.append(f"{found.pictures} picture(s)")
    if found.viewer or found.autorun:
        parts.append("a viewer program")
    if found.pdfs:
        parts.append(f"{len(found.pdfs)} PDF(s)")
    return ", ".join(parts)


def no_dicom_message(found: Contents) -> dict[str, str]:
    """What the coordinator reads when a medium holds no DICOM: English and Chinese.

    Says what is there instead and what to ask the hospital for (a DICOM export).
    """
    en: list[str] = []
    zh: list[str] = []
    if found.pictures:
        en.append(f"{found.pictures} picture(s) (JPEG/BMP/PNG pages)")
        zh.append(f"{found.pictures} 张图片（JPEG/BMP/PNG 页面）")
    if found.viewer or found.autorun:
        en.append("a viewer program (Windows)")
        zh.append("一个看图程序（Windows）")
    if found.pdfs:
        en.append(f"{len(found.pdfs)} PDF file(s)")
        zh.append(f"{len(found.pdfs)} 个 PDF 文件")
    if found.other:
        en.append(f"{found.other} other file(s)")
        zh.append(f"其他文件 {found.other} 个")
    what_en = ", ".join(en) if en else "no files at all"
    what_zh = "、".join(zh) if zh else "没有任何文件"
    text_en = (f"This medium holds no DICOM images: {what_en}. Pictures and viewer programs "
               "cannot go to the patient's doctor as a medical study. Ask the hospital for a "
               "DICOM export of the study (the original images in DICOM format, on a CD or USB "
               "stick).")
    text_zh = (f"此介质中没有 DICOM 影像：{what_zh}。图片和看图程序不能作为医学检查交给患者的"
               "医生。请向医院索取该检查的 DICOM 格式导出（DICOM 格式的原始影像，刻录在光盘或"
               "存入U盘）。")
    if found.pdfs:
        text_en += (" To use the PDF as the original report, open the patient's case, go to "
                    "Reports and attach it from this medium.")
        text_zh += "如需将其中的 PDF 作为原始报告，请打开患者的病例，进入“报告”，从此介质添加。"
    return {"en": text_en, "zh": text_zh}
