"""Reading a CSV upload into lines of cells, and the cell guard against CSV injection.

Everything here is about the file as bytes and text; what the cells mean is
decided by csv_columns and the importers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from portcullis.core.errors import ErrorCollector

MAX_BYTES = 20 * 1024 * 1024
FILE = "file"

# A spreadsheet runs a cell beginning with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GUARD = "'"
# Unicode White_Space, which is what the pydantic schemas strip; str.strip() also
# strips \x1c-\x1f, which the schemas keep, and the round trip would then differ.
_WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def needs_guard(value: str) -> bool:
    # Recursive so that a value which itself starts with the guard survives the
    # round trip: export adds one apostrophe, import removes exactly one.
    if value.startswith(_FORMULA_START):
        return True
    return value.startswith(_GUARD) and needs_guard(value[1:])


def guard(value: str) -> str:
    return _GUARD + value if needs_guard(value) else value


def unguard(value: str) -> str:
    if value.startswith(_GUARD) and needs_guard(value[1:]):
        return value[1:]
    return value


def clean(cell: str) -> str:
    """A cell as the importer sees it: trimmed, then with the export guard removed."""
    return unguard(cell.strip(_WHITE_SPACE))


@dataclass(frozen=True)
class Record:
    line: int  # where the record starts in the file, 1-based; the header is line 1
    cells: list[str]


@dataclass(frozen=True)
class RawTable:
    header: list[str]
    header_line: int
    records: list[Record]


def decode(data: bytes, errors: ErrorCollector) -> str | None:
    if len(data) > MAX_BYTES:
        errors.add(FILE, f"the file is {len(data):,} bytes; the limit is {MAX_BYTES:,} bytes (20 MB): split it")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line = data[:offset].count(b"\n") + 1
        errors.add(
            FILE,
            f"not UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} (line {line}) cannot be decoded; "
            "save the file as UTF-8 (CSV UTF-8 in spreadsheet programs)",
            line,
        )
        return None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        errors.add(FILE, "the file holds a NUL character: it is not a text CSV file", line)
        return None
    return text


def read_table(data: bytes, errors: ErrorCollector) -> RawTable | None:
    """The header and the data records, or None (with errors) if the file cannot be read."""
    text = decode(data, errors)
    if text is None:
        return None
    if not text.strip(_WHITE_SPACE):
        errors.add(FILE, "the file is empty: it needs a header row and at least one data row", 1)
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    header: list[str] | None = None
    header_line = 1
    records: list[Record] = []
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip(_WHITE_SPACE) for c in cells):
                continue  # blank lines, and rows of empty cells that spreadsheets leave at the end
            if header is None:
                header, header_line = cells, line
            else:
                records.append(Record(line, cells))
    except csv.Error as exc:
        errors.add(FILE, f"cannot be read as CSV: {exc}", reader.line_num)
        return None
    if header is None:
        errors.add(FILE, "the file has no header row", 1)
        return None
    return RawTable(header, header_line, records)
