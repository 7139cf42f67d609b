"""The gateway's own small pages, in English and Chinese, that say nothing about any share.

A phone that opens an unknown, revoked or expired link gets one of these: no case, no name, no
study, no date. The phone page itself (``kiosk/viewer/dist/SHARE.html``) is built by the viewer
room; until it is installed the gateway serves :data:`PLACEHOLDER`.
"""

from __future__ import annotations

import html

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title_en} / {title_zh}</title>
<style>body{{font:18px/1.5 system-ui,sans-serif;margin:2em auto;max-width:32em;padding:0 1em;
color:#222}}h1{{font-size:1.3em}}p{{margin:.5em 0 1.5em}}</style></head>
<body><main>
<h1>{title_en}</h1><p>{text_en}</p>
<h1 lang="zh">{title_zh}</h1><p lang="zh">{text_zh}</p>
</main></body></html>
"""


def page(title_en: str, text_en: str, title_zh: str, text_zh: str) -> bytes:
    """A small bilingual HTML page (UTF-8)."""
    return _TEMPLATE.format(title_en=html.escape(title_en), text_en=html.escape(text_en),
                            title_zh=html.escape(title_zh),
                            text_zh=html.escape(text_zh)).encode("utf-8")


UNKNOWN = page(
    "This link does not work", "Check that the whole address from your slip was entered, or "
    "scan the QR code again. If it still does not open, ask the office that gave you the slip.",
    "此链接无法打开",
    "请确认已完整输入回执上的网址，或重新扫描二维码。如仍无法打开，请联系给您回执的机构。")

REVOKED = page(
    "This link has been withdrawn", "The office has switched this link off. Ask them for a new "
    "one if you still need the images.",
    "此链接已被撤销", "该机构已停用此链接。如仍需要影像，请向其索取新的链接。")

EXPIRED = page(
    "This link has expired", "The link worked until the date on your slip. Ask the office for a "
    "new one if you still need the images.",
    "此链接已过期", "此链接的有效期截至回执上的日期。如仍需要影像，请向该机构索取新的链接。")

ADMIN = page(
    "Office login needed", "This part of the server is for the office only.",
    "需要机构登录", "服务器的这一部分仅供机构使用。")

PLACEHOLDER = page(
    "Your images are on this server", "The image viewer is not installed on this server yet. "
    "Ask the office for the images on a USB stick in the meantime.",
    "您的影像已在此服务器上", "此服务器尚未安装影像查看器。在此期间，请向该机构索取U盘中的影像。")

BUSY = page(
    "Too many requests", "Wait a minute, then open the link again.",
    "请求过于频繁", "请稍候一分钟，然后重新打开链接。")
