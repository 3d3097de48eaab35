"""Key service benchmark (issue: key management). Run: python bench/bench_keys.py [--seconds S]

Sign and encrypt through the key service (state, version and usage-policy checks,
use counting, the software backend's sealed keys) against calling
pyca/cryptography directly with the same key material, in the same process.
Target: the service at no less than half the direct rate. The PKCS#11 backend is
measured by tests/keys (SoftHSM2), when present, in its own section.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from common import write_section
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.migrate import upgrade
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.keys import primitives
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.models import CryptoKey, KeyVersion
from portcullis.keys.register import KeyIn, register_key
from portcullis.keys.service import backends, key_service

SYSTEM = Principal.system("bench")
PAYLOAD = b"x" * 1024
ALGORITHMS = (Algorithm.ED25519, Algorithm.ECDSA_P256, Algorithm.ECDSA_SECP256K1, Algorithm.RSA_3072)


def rate(fn: Callable[[], Any], seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            fn()
        n += 50
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="portcullis-bench-keys-"))
    rows: list[tuple[str, float, float]] = []
    try:
        rt = Runtime.build(Settings(data_dir=tmp), FrozenClock(datetime(2026, 11, 24, tzinfo=UTC)))
        upgrade(rt.engine)
        software = backends(rt)["software"]
        names = {a: a.value.replace("-", "") for a in (*ALGORITHMS, Algorithm.AES_256)}
        with rt.work(SYSTEM) as ctx:
            for algorithm, name in names.items():
                ops = ["encrypt", "decrypt"] if algorithm.symmetric else ["sign", "verify"]
                register_key(
                    ctx,
                    KeyIn(
                        key=name,
                        name=name,
                        purpose="benchmark",
                        algorithm=algorithm,
                        policy={op: ["system:bench"] for op in ops},
                    ),
                    software,
                )
        service = key_service(rt)
        with rt.session() as s:
            # The same material the service holds, opened here for the direct baseline.
            material = {
                a: software.open(
                    a,
                    s.scalar(
                        select(KeyVersion.ref)
                        .join(CryptoKey, CryptoKey.id == KeyVersion.key_id)
                        .where(CryptoKey.key == n)
                    )
                    or b"",
                )
                for a, n in names.items()
            }
        with rt.work(SYSTEM) as ctx:
            for algorithm in ALGORITHMS:
                direct = primitives.Signer(algorithm, material[algorithm])
                name = names[algorithm]
                rows.append(
                    (
                        f"sign, {algorithm.value}",
                        rate(lambda d=direct: d.sign(PAYLOAD), args.seconds),  # type: ignore[misc]
                        rate(lambda n=name: service.sign(ctx, n, PAYLOAD), args.seconds),  # type: ignore[misc]
                    )
                )
            aes = AESGCM(material[Algorithm.AES_256])
            rows.append(
                (
                    "encrypt 1 KiB, AES-256-GCM (fresh random nonce)",
                    rate(lambda: aes.encrypt(os.urandom(12), PAYLOAD, b""), args.seconds),
                    rate(lambda: service.encrypt(ctx, names[Algorithm.AES_256], PAYLOAD), args.seconds),
                )
            )
            counted = service.flush(ctx)
        rt.engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Key service",
        "",
        f"`python bench/bench_keys.py` on {when}, one process: operations per second through the key service "
        "(software backend: state, version and usage-policy checks, use counting) against pyca/cryptography "
        f"called directly with the same key in the same run. {counted:,} uses were counted, and flushed to the "
        "ledger at the end.",
        "",
        "| operation | direct (ops/s) | through the service (ops/s) | service / direct |",
        "|---|---:|---:|---:|",
    ]
    for label, direct_rate, service_rate in rows:
        lines.append(f"| {label} | {direct_rate:,.0f} | {service_rate:,.0f} | {service_rate / direct_rate:.2f} |")
    lines += ["", "Target (issue 6): the service at no less than half the direct rate (ratio >= 0.50)."]
    print("\n".join(lines))
    if not args.no_write:
        write_section("keys", lines)


if __name__ == "__main__":
    main()
