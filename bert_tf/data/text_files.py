"""The one reader of text inputs (classification, tagging, SQuAD, pretraining corpora, vocab sources).

Chinese data often arrives in GB18030/GBK, with a byte-order mark, with CRLF lines mixed into LF
ones, or with full-width spaces where a tab belongs. This module decides what each of those
means once: UTF-8 (with or without a BOM) and UTF-16 with a BOM are read as they are; any other
encoding must be named with ``--encoding``, and a file that is not UTF-8 but reads cleanly as
GB18030 is refused with a line naming ``--encoding=gb18030``. Lines end at ``\\n`` only (never at
U+2028, U+0085 or other characters ``str.splitlines`` would split on, which occur in real text).
"""
import codecs
import re
import unicodedata

from absl import logging

from bert_tf import gfile
from bert_tf.errors import UserError

ENCODING_HELP = ("Encoding of the input text files (default: UTF-8, with or without a BOM; UTF-16 with a BOM is "
                 "recognised). Chinese files are often gb18030 (a superset of GBK and GB2312) or big5.")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
# Spaces that look like a tab or a column gap in an editor but are not one.
_TAB_LIKE = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")


def check_encoding(encoding):
    """The codec name for ``--encoding`` (None stays None), or one line naming usable ones."""
    if not encoding:
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"--encoding={encoding} is not an encoding Python knows: use e.g. utf-8, gb18030 or "
                        "big5") from None


def looks_gb18030(raw):
    """Whether bytes decode as GB18030 and hold Chinese: what a non-UTF-8 Chinese file usually is."""
    try:
        return bool(_CJK.search(raw.decode("gb18030")))
    except UnicodeDecodeError:
        return False


def decode_error(path, raw, encoding, error, first_line=1):
    """The UserError for bytes that ``encoding`` (None: UTF-8) cannot decode, naming the encoding to pass."""
    line = first_line + raw[:error.start].count(b"\n")
    where = f"{path} line {line} is not {encoding or 'UTF-8'} (byte 0x{raw[error.start]:02x})"
    if encoding not in (None, "utf-8"):
        return UserError(f"{where}: pass the file's real --encoding, or re-save it as UTF-8")
    if looks_gb18030(raw):
        return UserError(f"{where}; the file reads as GB18030/GBK Chinese: pass --encoding=gb18030 (or re-save "
                         "the file as UTF-8)")
    return UserError(f"{where}: re-save the file as UTF-8, or pass --encoding=<its encoding> (e.g. latin-1, big5)")


def decode(path, raw, encoding=None):
    """Bytes of ``path`` -> text without BOM; errors name the line and the ``--encoding`` to pass."""
    encoding = check_encoding(encoding)
    chosen = encoding or "utf-8"
    for bom, name in _BOMS:
        if raw.startswith(bom) and encoding in (None, "utf-8", "utf-8-sig", name):
            raw, chosen = raw[len(bom):], ("utf-16-le" if bom == codecs.BOM_UTF16_LE else
                                           "utf-16-be" if bom == codecs.BOM_UTF16_BE else "utf-8")
            break
    try:
        text = raw.decode(chosen)
    except UnicodeDecodeError as error:
        raise decode_error(path, raw, encoding, error) from None
    return text


def split_lines(path, text):
    """Lines of ``text`` split at ``\\n`` with any ``\\r`` ending removed.

    Consistent CRLF files read silently; a file mixing CRLF and LF lines reads the same but gets one
    warning naming the minority's lines (it was usually edited on two systems, or concatenated). A
    bare ``\\r`` inside a line (old Mac line ends) is an error naming its lines: it would otherwise
    join what were meant to be separate rows.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    crlf = [number for number, line in enumerate(lines, start=1) if line.endswith("\r")]
    if crlf:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    bare = [number for number, line in enumerate(lines, start=1) if "\r" in line]
    if bare:
        raise UserError(f"{path} has a carriage return (\\r) inside line(s) {_numbers(bare)}: convert the file's "
                        "line endings to \\n (e.g. `mac2unix` or `tr '\\r' '\\n'`)")
    if crlf and len(crlf) < len(lines):
        lf = sorted(set(range(1, len(lines) + 1)) - set(crlf))
        minority, kind = (crlf, "CRLF") if len(crlf) <= len(lf) else (lf, "LF")
        logging.warning("%s mixes CRLF and LF line endings: %d line(s) end in %s (line(s) %s); read as the same "
                        "lines, but check the file was not pasted together", path, len(minority), kind,
                        _numbers(minority))
    return lines


def _numbers(numbers, limit=5):
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def read_text(path, encoding=None):
    """The whole decoded file (BOM removed)."""
    if gfile.isdir(path):
        raise UserError(f"{path} is a directory, not a file: pass the data file itself")
    with gfile.GFile(path, "rb") as f:
        raw = f.read()
    return decode(path, raw, encoding)


def read_lines(path, encoding=None):
    """Decoded lines of ``path`` (see ``split_lines``)."""
    return split_lines(path, read_text(path, encoding))


def tab_like_lines(lines, separator="\t", first_line=1):
    """[(line number, character)] of lines without ``separator`` that hold a tab-like space instead."""
    found = []
    for number, line in enumerate(lines, start=first_line):
        if separator not in line:
            match = _TAB_LIKE.search(line)
            if match:
                found.append((number, match.group(0)))
    return found


def tab_like_error(path, found, what="a tab"):
    """One line naming the lines whose columns are separated by a full-width or other Unicode space."""
    numbers = [number for number, _ in found]
    char = found[0][1]
    name = unicodedata.name(char, "a Unicode space").title()
    return UserError(f"{path} line(s) {_numbers(numbers)} separate columns with U+{ord(char):04X} {name}, not "
                     f"{what}: replace it with {what}")
