"""Patient names in every character set, including mislabelled Chinese ones.

Chinese hospital media routinely carry names whose bytes are GBK/GB18030 while
(0008,0005) *Specific Character Set* says ``ISO_IR 100`` or is missing. Shown as
declared, such a name becomes Latin-1 mojibake ("ÀîÐ»"), which at a coordination
desk means the wrong patient might be confirmed. This module decodes names with
pydicom's own charset machinery (so every charset pydicom knows works), detects
the common mislabelling, and reports what it guessed. It never changes any file:
the decoded text is for display and reports only (DESIGN.md section 3).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from pydicom import charset as dcm_charset
from pydicom.valuerep import PN_DELIMS

__all__ = ["DecodedName", "decode_person_name", "display_name"]


@dataclass(frozen=True)
class DecodedName:
    """A decoded PN value.

    Attributes
    ----------
    stored : str
        The full PN value, decoded (e.g. ``"Li^Hua=李^华="``). Normally decoded
        with the declared charset; when the declared charset was clearly wrong
        this is the corrected decoding (see `warning`).
    display : str
        Human-readable form: alphabetic then ideographic group, e.g.
        ``"Wang XiaoDong 王小东"``.
    warning : str or None
        Set when the charset had to be guessed or the bytes could not be
        decoded cleanly; an English sentence suitable for the UI and reports.
    """

    stored: str
    display: str
    warning: str | None


# Declared charsets under which GBK bytes are commonly mislabelled. Compared
# after removing spaces/underscores and uppercasing, so misspellings that
# hospital software writes ("ISO_IR100", "ISO IR 100") are caught too.
_LATIN_LIKE = {"", "ISOIR6", "ISO2022IR6", "ISOIR100", "ISO2022IR100"}

# An ISO 2022 escape sequence: ESC, intermediate bytes 0x20-0x2F, final byte.
_ESCAPE_SEQ = re.compile("\x1b[\x20-\x2f]+[\x30-\x7e]")

# pydicom 3.0.2 decodes ISO 2022 IR 58 fragments with Python's gb2312 codec
# *including* the ESC $ ) A designator, which therefore survives in the text.
_IR58_DESIGNATOR = "\x1b$)A"

_GB_WARNING = (
    "Patient name is GB18030/GBK but {label}; shown decoded as Chinese. "
    "The original file is unchanged."
)
_UTF8_WARNING = (
    "Patient name is UTF-8 but {label}; shown decoded as UTF-8. "
    "The original file is unchanged."
)


def _normalise_terms(specific_character_set: str | list[str] | None) -> list[str]:
    """Return the declared charset as a list of stripped defined terms."""
    if specific_character_set is None:
        return []
    if isinstance(specific_character_set, bytes):  # raw (0008,0005) value
        specific_character_set = specific_character_set.decode("ascii", "replace")
    if isinstance(specific_character_set, str):
        # A raw multi-valued CS string uses backslash as the separator.
        terms = specific_character_set.split("\\")
    else:
        terms = [str(t) for t in specific_character_set]
    terms = [t.strip() for t in terms]
    # A charset of just "" is the same as none at all.
    return [] if all(not t for t in terms) else terms


def _label(terms: list[str]) -> str:
    """Describe the declared charset for a warning sentence."""
    if not terms:
        return "has no Specific Character Set (default repertoire)"
    return "labelled " + "\\".join(terms)


def _is_latin_like(terms: list[str]) -> bool:
    return all(re.sub(r"[\s_]", "", t).upper() in _LATIN_LIKE for t in terms)


def _is_ideograph(ch: str) -> bool:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return False
    return name.startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"))


def _is_cjk_punctuation(ch: str) -> bool:
    # Middle dots separate transliterated foreign names ("约翰·史密斯"); the
    # ideographic space and full-width forms show up in hand-typed names.
    cp = ord(ch)
    return ch in "\u00b7\u30fb" or 0x3000 <= cp <= 0x303F or 0xFF01 <= cp <= 0xFF5E


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _plausible_chinese(text: str) -> bool:
    """Whether `text` (a GB18030 decoding) looks like a real Chinese name.

    Chance decodings of Latin-1 text produce ideographs glued to Latin letters
    ("Müller" -> "M"+ideograph+"ler") or symbols/Cyrillic from GBK's other
    rows; genuine names have only ideographs (and CJK punctuation) as non-ASCII
    characters and never mix them with ASCII letters inside one token.
    """
    if _has_control(text) or not any(_is_ideograph(c) for c in text):
        return False
    for ch in text:
        if ord(ch) >= 0x80 and not (_is_ideograph(ch) or _is_cjk_punctuation(ch)):
            return False
    # Tokens are maximal runs of ASCII alphanumerics and non-ASCII characters.
    for token in re.findall(r"[0-9A-Za-z\u0080-\U0010ffff]+", text):
        has_ascii = any(c.isascii() for c in token)
        has_other = any(not c.isascii() for c in token)
        if has_ascii and has_other:
            return False
    return True


def _plausible_utf8(text: str) -> bool:
    """Whether `text` (a strict UTF-8 decoding) looks like intended text."""
    # Strict UTF-8 of Latin-1 or GBK bytes by chance is very rare; requiring
    # letters/ideographs only rules out most of the remaining accidents.
    if _has_control(text):
        return False
    return all(
        c.isascii() or unicodedata.category(c).startswith("L") or _is_cjk_punctuation(c)
        for c in text
    )


def _decode_declared(raw: bytes, terms: list[str]) -> tuple[str, bool]:
    """Decode with pydicom as declared; return (text, clean).

    `clean` is False when pydicom had to substitute replacement characters or
    fell back to another encoding. Never raises.
    """
    try:
        # pydicom treats [] and [""] as the default repertoire.
        encodings = dcm_charset.convert_encodings(terms or None)
    except LookupError:  # unknown term with reading_validation_mode == RAISE
        encodings = [dcm_charset.default_encoding]
    known = all(_is_known_term(t) for t in terms)
    try:
        # PN groups are decoded separately (escape state resets at "="),
        # exactly as pydicom's PersonName does, but trailing empty groups are
        # kept so `stored` round-trips "Li^Hua=李^华=".
        groups = [
            dcm_charset.decode_bytes(group, encodings, PN_DELIMS) for group in raw.split(b"=")
        ]
        text = "=".join(groups)
    except (UnicodeError, LookupError, ValueError):
        # reading_validation_mode == RAISE turns pydicom's fallbacks into errors.
        text = raw.decode(_first_codec(encodings), errors="replace")
        return _strip_escapes(text, encodings)[0], False

    text, unexpected_escape = _strip_escapes(text, encodings)
    clean = known and "\ufffd" not in text and not unexpected_escape
    return text, clean


def _is_known_term(term: str) -> bool:
    """Whether pydicom can map `term` to a codec (incl. its spelling fixes)."""
    if not term or term in dcm_charset.python_encoding:
        return True
    # The same common misspellings pydicom corrects (with a warning).
    for pattern, fixed in ((r"^ISO.IR", "ISO_IR"), (r"^ISO.2022.IR.", "ISO 2022 IR ")):
        if re.sub(pattern, fixed, term) in dcm_charset.python_encoding:
            return True
    return _codec_exists(term)


def _codec_exists(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _first_codec(encodings: list[str]) -> str:
    enc = encodings[0] if encodings else dcm_charset.default_encoding
    return enc if _codec_exists(enc) else "latin_1"


def _strip_escapes(text: str, encodings: list[str]) -> tuple[str, bool]:
    """Remove ISO 2022 escape sequences left in decoded text.

    Returns the text and whether an escape sequence other than the IR 58
    designator (a known pydicom artefact) was found, which means the bytes used
    a character set that was not declared.
    """
    if "\x1b" not in text:
        return text, False
    unexpected = False

    def repl(match: re.Match[str]) -> str:
        nonlocal unexpected
        if not (match.group(0) == _IR58_DESIGNATOR and "iso_ir_58" in encodings):
            unexpected = True
        return ""

    text = _ESCAPE_SEQ.sub(repl, text)
    if "\x1b" in text:  # a lone or truncated ESC
        unexpected = True
        text = text.replace("\x1b", "")
    return text, unexpected


def decode_person_name(
    raw: bytes, specific_character_set: str | list[str] | None
) -> DecodedName:
    """Decode a raw PN value, detecting GBK/GB18030 labelled as Latin-1.

    Parameters
    ----------
    raw : bytes
        The undecoded PN value as stored in the file, e.g.
        ``ds.get_item(0x00100010).value`` of a dataset read with pydicom.
        Trailing space/NUL padding is ignored.
    specific_character_set : str, list of str or None
        The value of (0008,0005) *Specific Character Set* (a single defined
        term, a list of terms, a raw backslash-separated string, or ``None``
        when the element is absent).

    Returns
    -------
    DecodedName
        The decoded value, its display form and a warning when the charset
        had to be guessed or some bytes could not be decoded.

    Notes
    -----
    Mislabelled Chinese is assumed only when all of these hold: the bytes
    contain non-ASCII and no ISO 2022 escapes, the declared charset is absent,
    ``ISO_IR 6`` or ``ISO_IR 100``, and the bytes decode strictly as GB18030
    into ideographs that are not mixed with Latin letters (so Latin-1 names
    such as ``Müller^Jürgen`` stay Latin-1). Strict UTF-8 is tried first
    because UTF-8 Chinese also decodes as (wrong) GB18030. Never raises.
    """
    if isinstance(raw, str):  # be forgiving: an already decoded value
        stored = raw.rstrip(" \x00")
        return DecodedName(stored, display_name(stored), None)
    raw = bytes(raw or b"").rstrip(b" \x00")
    terms = _normalise_terms(specific_character_set)
    label = _label(terms)

    text, clean = _decode_declared(raw, terms)
    latin_like = _is_latin_like(terms)
    # A guess is justified only for 8-bit text without ISO 2022 escapes, and
    # only when the label is one Chinese software writes by mistake or the
    # declared charset does not fit the bytes at all.
    warning: str | None
    if not raw.isascii() and b"\x1b" not in raw and (latin_like or not clean):
        guess = _guess(raw)
        if guess is not None:
            guessed, template = guess
            if not latin_like:
                declared = "\\".join(terms)
                label = f"labelled {declared} and is not valid {declared}"
            return DecodedName(guessed, display_name(guessed), template.format(label=label))

    if not clean and "\ufffd" in text:
        warning = (
            f"Patient name could not be decoded cleanly ({label}); "
            "unreadable characters are shown as \ufffd. The original file is unchanged."
        )
    elif not clean:
        warning = (
            f"Patient name uses an unknown or undeclared character set ({label}); "
            "some characters may be shown wrongly. The original file is unchanged."
        )
    elif not terms and not raw.isascii():
        # Non-ASCII bytes without a charset: pydicom shows them as Latin-1,
        # which is a guess the coordinator should know about.
        warning = (
            "Patient name has non-ASCII characters but no Specific Character Set; "
            "shown as Latin-1 (ISO_IR 100). The original file is unchanged."
        )
    else:
        warning = None
    return DecodedName(text, display_name(text), warning)


def _guess(raw: bytes) -> tuple[str, str] | None:
    """Try UTF-8 then GB18030; return (text, warning template) or None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if _plausible_utf8(text):
            return text, _UTF8_WARNING
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        return None
    if _plausible_chinese(text):
        return text, _GB_WARNING
    return None


def _join(components: list[str], *, ideographic: bool) -> str:
    """Join PN components for display.

    Alphabetic/phonetic components are separated by one space, except between
    two Han ideographs: Chinese hospitals often put 李^华 in the alphabetic
    group, and Chinese names are written without a space (李华). Ideographic
    components are concatenated (王^小东 -> 王小东) unless that would run two
    Latin words together.
    """
    out = ""
    for comp in (" ".join(c.split()) for c in components):
        if not comp:
            continue
        if out:
            left, right = out[-1], comp[0]
            if ideographic:
                glue = " " if _is_latin_word_char(left) and _is_latin_word_char(right) else ""
            else:
                glue = "" if _is_ideograph(left) and _is_ideograph(right) else " "
            out += glue
        out += comp
    return out


def _is_latin_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _display_one(pn: str) -> str:
    groups = [*pn.split("="), "", "", ""][:3]
    alphabetic, ideographic, phonetic = (g.split("^") for g in groups)
    # Components stay in stored order (family, given, middle, prefix, suffix);
    # the case is kept as stored because hospitals are inconsistent about it.
    alpha = _join(alphabetic, ideographic=False)
    ideo = _join(ideographic, ideographic=True)
    if alpha and ideo:
        return f"{alpha} {ideo}"
    if alpha or ideo:
        return alpha or ideo
    return _join(phonetic, ideographic=False)


def display_name(pn: str) -> str:
    """Return the display form of an already decoded PN string.

    Parameters
    ----------
    pn : str
        A decoded PN value: up to three ``=``-separated groups (alphabetic,
        ideographic, phonetic), each of ``^``-separated components. A
        multi-valued PN (``\\``-separated) gives the names joined by ``"; "``.

    Returns
    -------
    str
        Alphabetic components joined by single spaces (no space between two
        Han ideographs, so 李^华 shows as 李华), then the ideographic
        components concatenated (``"Wang XiaoDong 王小东"``); whichever group
        exists when only one does; the phonetic group only if nothing else is
        present; ``""`` for an empty name.
    """
    if not pn:
        return ""
    # Control characters (stray escapes, NULs) never belong on screen.
    pn = "".join(c for c in str(pn) if unicodedata.category(c) != "Cc")
    names = (_display_one(v) for v in pn.split("\\"))
    return "; ".join(n for n in names if n)
