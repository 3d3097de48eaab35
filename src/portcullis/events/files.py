"""Cutting raw records out of files: lines, or the records of a CloudTrail document.

A file is recognised by the SHA-256 of its first bytes (up to HEAD), so a log
that is copied, renamed or rotated resumes where it stopped, and a new one
starts at zero. Offsets are byte offsets, so a resumed read seeks, it does not
re-read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from portcullis.events.prepare import RawRecord

HEAD = 1024
CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    input_id: str
    head_len: int


def fingerprint_of(head: bytes) -> Fingerprint:
    head = head[:HEAD]
    return Fingerprint("file:" + hashlib.sha256(head).hexdigest(), len(head))


def read_head(path: Path, length: int = HEAD) -> bytes:
    with path.open("rb") as f:
        return f.read(length)


def lines_from(f: BinaryIO, offset: int, position: int, *, final: bool) -> Iterator[RawRecord]:
    """Complete lines from `offset` on; a last line without its newline only when `final`.

    Not final (following a growing file), the unfinished line waits for the
    writer: taking it now would cut one record in two.
    """
    f.seek(offset)
    pending = b""
    start = offset
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        data = pending + chunk
        cut = 0
        while True:
            nl = data.find(b"\n", cut)
            if nl < 0:
                break
            position += 1
            line = data[cut:nl]
            if line.endswith(b"\r"):
                line = line[:-1]
            yield RawRecord(line, position, start + cut, start + nl + 1)
            cut = nl + 1
        pending = data[cut:]
        start += cut
    if pending and final:
        yield RawRecord(pending.rstrip(b"\r"), position + 1, start, start + len(pending))


def json_records_from(data: bytes, position: int) -> Iterator[RawRecord]:
    """The records of a CloudTrail-style document ({"Records": [...]}) after the first `position`.

    Each record's raw text is its compact JSON: the document's layout carries no
    evidence, the record's content does. A document that is not such an object
    is read as one JSON value per line.
    """
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
            size = len(data)
            for i, rec in enumerate(doc["Records"], start=1):
                if i <= position:
                    continue
                text = json.dumps(rec, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
                yield RawRecord(text.encode(), i, None, size if i == len(doc["Records"]) else 0)
            return
    for rec in lines_of(data):
        if rec.position > position:
            yield rec


def lines_of(data: bytes) -> Iterator[RawRecord]:
    start = 0
    position = 0
    while start < len(data):
        nl = data.find(b"\n", start)
        end = len(data) if nl < 0 else nl
        position += 1
        yield RawRecord(data[start:end].rstrip(b"\r"), position, start, end + 1)
        start = end + 1
