"""A look at the start of an uploaded file, before it is queued for import: is it UTF-8 text?

Imports read UTF-8 (with or without BOM). Files saved as UTF-16 (Excel's "Unicode text"),
Latin-1 / Windows-1252, or workbooks and other binary files are refused with a message that
names the problem, instead of failing later in the worker. Only the first ``SAMPLE_BYTES`` are
looked at: a stray non-UTF-8 byte further down is reported by the import, row by row."""

from __future__ import annotations

import codecs

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

SAMPLE_BYTES = 64 * 1024

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
_ZIP_SIGNATURE = b"PK\x03\x04"  # .xlsx, .ods and .zip files
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0"  # old .xls files
# Control bytes no CSV holds (tab, line feed and carriage return are fine).
_CONTROL_BYTES = bytes(range(0x00, 0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))
_SAVE_AS_UTF8 = gettext_lazy("Save it as “CSV UTF-8” and import it again.")


def encoding_problem(sample: bytes) -> str | None:
    """A translated sentence saying why ``sample`` (the start of a file) is not UTF-8 text, or
    ``None`` when it is. An empty sample is not an encoding problem."""
    if sample.startswith(_UTF32_BOMS):
        return _("The file is saved as UTF-32, not UTF-8. %(fix)s") % {"fix": _SAVE_AS_UTF8}
    if sample.startswith(_UTF16_BOMS) or _looks_like_utf16(sample):
        return _("The file is saved as UTF-16 (“Unicode text”), not UTF-8. %(fix)s") % {
            "fix": _SAVE_AS_UTF8
        }
    if sample.startswith((_ZIP_SIGNATURE, _OLE_SIGNATURE)):
        return _(
            "The file is a spreadsheet workbook or an archive, not a CSV file. "
            "Open it in the spreadsheet program and save it as “CSV UTF-8”."
        )
    if any(byte in _CONTROL_BYTES for byte in sample):
        return _("The file holds binary data, not text. Choose a CSV file saved as UTF-8.")
    try:
        # A full sample may end in the middle of a character, which is no error; a shorter
        # one is the whole file.
        whole_file = len(sample) < SAMPLE_BYTES
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=whole_file)
    except UnicodeDecodeError as error:
        return _(
            "The file is not UTF-8: byte %(position)s (0x%(byte)02X) is not UTF-8 text, so the "
            "file is probably saved as Latin-1 or Windows-1252. %(fix)s"
        ) % {"position": error.start + 1, "byte": sample[error.start], "fix": _SAVE_AS_UTF8}
    return None


def _looks_like_utf16(sample: bytes) -> bool:
    """UTF-16 without a BOM: mostly ASCII text with a NUL byte beside every character."""
    pairs = sample[: len(sample) - len(sample) % 2]
    if len(pairs) < 4:
        return False
    nul_in_even, nul_in_odd = pairs[0::2].count(0), pairs[1::2].count(0)
    half = len(pairs) // 2
    return max(nul_in_even, nul_in_odd) > half * 0.6 and min(nul_in_even, nul_in_odd) < half * 0.1
