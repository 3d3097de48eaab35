"""Evidence bundles: records, proofs, checkpoints and the public key in one zip
that an auditor checks offline, without the database and without trusting us.

Layout (format portcullis-evidence/1):
  manifest.json                  format, time, verifier key, per-stream summary, SHA-256 of every other file
  key.txt                        the C2SP verifier key that signed the checkpoints
  <stream>/checkpoints.txt       every signed checkpoint of the stream up to the bundle, notes separated by a line "~"
  <stream>/consistency.jsonl     {"from", "to", "proof"} between consecutive checkpoints
  <stream>/records.jsonl         one record per line: its exact canonical bytes
  <stream>/proofs.jsonl          for a selection: {"seq", "proof"} per record, against the last checkpoint
A whole stream ("full") needs no per-record proofs: the verifier recomputes the root.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.core.canonical import jsonable
from portcullis.core.errors import NotFound, ValidationFailed
from portcullis.ledger import merkle
from portcullis.ledger.models import LedgerCheckpoint, LedgerStream
from portcullis.ledger.note import Checkpoint, NoteError, VerifierKey, open_note
from portcullis.ledger.queries import latest_checkpoint, records_query
from portcullis.ledger.store import StoredTree

FORMAT = "portcullis-evidence/1"
NOTE_SEPARATOR = "~\n"


@dataclass
class Selection:
    """Which records of a stream go in: all, or those of one action / object."""

    stream: str
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None

    @property
    def full(self) -> bool:
        return self.action is None and self.object_type is None and self.object_id is None


def write_bundle(
    session: Session, key: VerifierKey, selections: Sequence[Selection], out: Path, now: datetime
) -> dict[str, Any]:
    files: dict[str, bytes] = {"key.txt": (str(key) + "\n").encode()}
    summary = []
    for sel in selections:
        stream = session.scalars(select(LedgerStream).where(LedgerStream.name == sel.stream)).one_or_none()
        if stream is None:
            raise NotFound(f"No ledger stream named {sel.stream!r}")
        top = latest_checkpoint(session, stream)
        cps = list(
            session.scalars(
                select(LedgerCheckpoint)
                .where(LedgerCheckpoint.stream_id == stream.id, LedgerCheckpoint.size <= top.size)
                .order_by(LedgerCheckpoint.size, LedgerCheckpoint.id)
            )
        )
        files[f"{stream.name}/checkpoints.txt"] = NOTE_SEPARATOR.join(c.note for c in cps).encode()
        tree = StoredTree(session, stream, top.size)
        consistency = []
        sizes = sorted({c.size for c in cps})
        for m, n in itertools.pairwise(sizes):
            sub = StoredTree(session, stream, n)
            consistency.append({"from": m, "to": n, "proof": [h.hex() for h in sub.consistency_proof(m)]})
        files[f"{stream.name}/consistency.jsonl"] = _jsonl(consistency)
        chosen = records_query(stream.name, sel.action, sel.object_type, sel.object_id).subquery()
        q = select(chosen.c.seq, chosen.c.payload).where(chosen.c.seq < top.size).order_by(chosen.c.seq)
        rows = list(session.execute(q))
        full = sel.full and stream.purged_below == 0
        if sel.full and stream.purged_below:
            # Purged payloads cannot be shipped, so the kept ones travel with proofs.
            full = False
        files[f"{stream.name}/records.jsonl"] = b"".join(bytes(p) + b"\n" for _, p in rows)
        if not full:
            proofs = [{"seq": seq, "proof": [h.hex() for h in tree.inclusion_proof(seq)]} for seq, _ in rows]
            files[f"{stream.name}/proofs.jsonl"] = _jsonl(proofs)
        summary.append(
            {
                "stream": stream.name,
                "mode": "full" if full else "selected",
                "records": len(rows),
                "first_seq": rows[0][0] if rows else None,
                "checkpoint_size": top.size,
                "checkpoint_root": base64.b64encode(top.root).decode(),
                "selection": jsonable({k: v for k, v in vars(sel).items() if v is not None and k != "stream"}),
            }
        )
    manifest = {
        "format": FORMAT,
        "created_at": jsonable(now),
        "verifier_key": str(key),
        "streams": summary,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    return manifest


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(i, sort_keys=True).encode() + b"\n" for i in items)


@dataclass
class BundleReport:
    ok: bool = True
    key: str = ""
    key_pinned: bool = False
    streams: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def fail(self, msg: str) -> None:
        self.ok = False
        self.problems.append(msg)


def verify_bundle(path: Path, pinned_key: str | None = None) -> BundleReport:
    """Check a bundle with this package's own Merkle and note code (tools/ holds an independent one)."""
    report = BundleReport()
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValidationFailed(f"{path} is not a readable zip file: {exc}") from exc
    with z:
        manifest = json.loads(z.read("manifest.json"))
        if manifest.get("format") != FORMAT:
            raise ValidationFailed(f"unknown bundle format {manifest.get('format')!r}")
        for name, digest in manifest["files"].items():
            if hashlib.sha256(z.read(name)).hexdigest() != digest:
                report.fail(f"{name}: SHA-256 differs from the manifest")
        key = VerifierKey.parse(pinned_key or z.read("key.txt").decode())
        report.key, report.key_pinned = str(key), pinned_key is not None
        if str(key) != manifest["verifier_key"]:
            report.fail("the bundle was signed for another key than the one given")
        for s in manifest["streams"]:
            report.streams.append(_verify_stream(z, key, s, report))
    return report


def _verify_stream(z: zipfile.ZipFile, key: VerifierKey, s: dict[str, Any], report: BundleReport) -> dict[str, Any]:
    name = s["stream"]
    cps: list[Checkpoint] = []
    for note in z.read(f"{name}/checkpoints.txt").decode().split(NOTE_SEPARATOR):
        try:
            cp = Checkpoint.parse(open_note(note, key))
        except NoteError as exc:
            report.fail(f"{name}: a checkpoint does not verify: {exc}")
            continue
        if not cp.origin.endswith("/" + name):
            report.fail(f"{name}: checkpoint for another stream ({cp.origin})")
        cps.append(cp)
    if not cps:
        report.fail(f"{name}: no valid checkpoint")
        return {"stream": name, "ok": False}
    roots = {c.size: c.root for c in cps}
    for line in z.read(f"{name}/consistency.jsonl").splitlines():
        c = json.loads(line)
        proof = [bytes.fromhex(h) for h in c["proof"]]
        if not merkle.verify_consistency(c["from"], c["to"], roots[c["from"]], roots[c["to"]], proof):
            report.fail(f"{name}: checkpoint at {c['to']} does not extend the one at {c['from']}")
    top = max(cps, key=lambda c: c.size)
    records = z.read(f"{name}/records.jsonl").splitlines()
    if s["mode"] == "full":
        got = merkle.root_of([merkle.leaf_hash(r) for r in records])
        if len(records) != top.size or got != top.root:
            report.fail(f"{name}: the {len(records)} records do not hash to the checkpoint of size {top.size}")
    else:
        proofs = [json.loads(x) for x in z.read(f"{name}/proofs.jsonl").splitlines()]
        if len(proofs) != len(records):
            report.fail(f"{name}: {len(records)} records but {len(proofs)} proofs")
        for rec, p in zip(records, proofs, strict=False):
            proof = [bytes.fromhex(h) for h in p["proof"]]
            if not merkle.verify_inclusion(merkle.leaf_hash(rec), p["seq"], top.size, proof, top.root):
                report.fail(f"{name}[{p['seq']}]: not included in the checkpoint of size {top.size}")
    return {"stream": name, "records": len(records), "checkpoint_size": top.size, "mode": s["mode"]}
