#!/usr/bin/env python3
"""Verify a Portcullis evidence bundle, offline, trusting nothing but this file.

Needs Python 3.11+ and the `cryptography` package. Written apart from Portcullis
on purpose: an auditor can read it in one sitting and check the bundle without
running the operator's code.

    python verify_bundle.py BUNDLE.zip --key 'NAME+KEYID+BASE64KEY'

--key is the published verifier key (`portcullis ledger pubkey`); without it the
key inside the bundle is used, which proves integrity but not who signed.

What is checked: every file's SHA-256 against the manifest; every checkpoint's
Ed25519 signature (C2SP signed note, c2sp.org/signed-note); that each checkpoint
extends the previous one (RFC 9162 consistency proofs); and that the records are
exactly the tree the latest checkpoint signs (full bundles) or are included in it
(RFC 9162 inclusion proofs). Exit status 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zipfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def tree_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1: split at the largest power of two below n."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node(tree_root(leaves[:k]), tree_root(leaves[k:]))


def root_from_inclusion(h: bytes, index: int, size: int, proof: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    for p in proof:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            h = node(p, h)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            h = node(h, p)
        fn, sn = fn >> 1, sn >> 1
    return h if sn == 0 else None


def consistent(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0 or size1 > size2:
        return size1 == 0 and not proof
    path = ([root1] if size1 & (size1 - 1) == 0 else []) + proof
    if not path:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0


def parse_key(text: str) -> tuple[str, bytes, bytes]:
    name, key_id, material = text.strip().split("+", 2)
    raw = base64.b64decode(material, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 verifier key")
    if sha256(name.encode() + b"\n" + raw)[:4].hex() != key_id:
        raise ValueError("key id does not match the key")
    return name, bytes.fromhex(key_id), raw[1:]


def open_checkpoint(note: str, key: tuple[str, bytes, bytes]) -> tuple[str, int, bytes]:
    """Check the signed note and return (origin, size, root) of the checkpoint it carries."""
    name, key_id, public = key
    cut = note.rfind("\n\n")
    text, signatures = note[: cut + 1], note[cut + 2 :].splitlines()
    verified = False
    for line in signatures:
        signer, _, blob = line.removeprefix("\u2014 ").partition(" ")
        raw = base64.b64decode(blob)
        if signer == name and raw[:4] == key_id:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
            except InvalidSignature:
                raise ValueError("a checkpoint signature does not verify") from None
            verified = True
    if not verified:
        raise ValueError("a checkpoint is not signed by the trusted key")
    origin, size, root_b64 = text.split("\n")[:3]
    return origin, int(size), base64.b64decode(root_b64)


def verify(path: str, key_text: str | None) -> list[str]:
    problems: list[str] = []
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        for name, digest in manifest["files"].items():
            if hashlib.sha256(z.read(name)).hexdigest() != digest:
                problems.append(f"{name}: content differs from the manifest")
        key = parse_key(key_text or z.read("key.txt").decode())
        for s in manifest["streams"]:
            stream = s["stream"]
            checkpoints: dict[int, bytes] = {}
            for note in z.read(f"{stream}/checkpoints.txt").decode().split("~\n"):
                try:
                    origin, size, root = open_checkpoint(note, key)
                except ValueError as exc:
                    problems.append(f"{stream}: {exc}")
                    continue
                if not origin.endswith("/" + stream):
                    problems.append(f"{stream}: a checkpoint is for {origin}")
                checkpoints[size] = root
            if not checkpoints:
                problems.append(f"{stream}: no checkpoint verifies")
                continue
            for line in z.read(f"{stream}/consistency.jsonl").splitlines():
                c = json.loads(line)
                proof = [bytes.fromhex(h) for h in c["proof"]]
                if not consistent(c["from"], c["to"], checkpoints[c["from"]], checkpoints[c["to"]], proof):
                    problems.append(f"{stream}: checkpoint {c['to']} does not extend checkpoint {c['from']}")
            size = max(checkpoints)
            records = z.read(f"{stream}/records.jsonl").splitlines()
            if s["mode"] == "full":
                if len(records) != size or tree_root([leaf(r) for r in records]) != checkpoints[size]:
                    problems.append(f"{stream}: records do not form the tree the checkpoint of size {size} signs")
            else:
                proofs = [json.loads(x) for x in z.read(f"{stream}/proofs.jsonl").splitlines()]
                if len(proofs) != len(records):
                    problems.append(f"{stream}: {len(records)} records but {len(proofs)} proofs")
                for record, p in zip(records, proofs, strict=False):
                    path_ = [bytes.fromhex(h) for h in p["proof"]]
                    if root_from_inclusion(leaf(record), p["seq"], size, path_) != checkpoints[size]:
                        problems.append(f"{stream}[{p['seq']}]: not in the checkpoint of size {size}")
            print(f"{stream}: {len(records)} records checked against checkpoint size {size}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description="Verify a Portcullis evidence bundle offline.")
    parser.add_argument("bundle")
    parser.add_argument("--key", help="the published verifier key (recommended)")
    args = parser.parse_args()
    if not args.key:
        print("warning: no --key given; trusting the key inside the bundle", file=sys.stderr)
    try:
        problems = verify(args.bundle, args.key)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"PROBLEM: {p}")
    print("bundle verifies" if not problems else "bundle does NOT verify")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
