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
import secrets
import shutil
import subprocess
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
PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
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


def softhsm_token(root: Path) -> tuple[str, str] | None:
    """A fresh SoftHSM2 token in `root` (label, PIN), or None without SoftHSM2. Before any PKCS#11 load."""
    if shutil.which("softhsm2-util") is None or not Path(PKCS11_MODULE).exists():
        return None
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(8)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", pin, "--so-pin", pin],
        check=True,
        capture_output=True,
    )
    return "bench", pin


def pkcs11_rows(rt: Runtime, root: Path, seconds: float) -> list[tuple[str, float, float]]:
    """Through the service on a SoftHSM2 token, against the backend called directly (the token is the cost)."""
    from portcullis.keys.backends.pkcs11 import Pkcs11Backend
    from portcullis.keys.use import KeyService

    made = softhsm_token(root)
    if made is None:
        return []
    label, pin = made
    hsm = Pkcs11Backend(token_label=label, user_pin=pin, module=PKCS11_MODULE)
    service = KeyService({"pkcs11": hsm})
    rows = []
    with rt.work(SYSTEM) as ctx:
        for algorithm in (Algorithm.ED25519, Algorithm.ECDSA_P256, Algorithm.ECDSA_SECP256K1, Algorithm.AES_256):
            name = "hsm-" + algorithm.value
            op = "encrypt" if algorithm.symmetric else "sign"
            register_key(
                ctx,
                KeyIn(
                    key=name,
                    name=name,
                    purpose="benchmark",
                    algorithm=algorithm,
                    backend="pkcs11",
                    policy={op: ["system:bench"]},
                ),
                hsm,
            )
        for algorithm in (Algorithm.ED25519, Algorithm.ECDSA_P256, Algorithm.ECDSA_SECP256K1, Algorithm.AES_256):
            name = "hsm-" + algorithm.value
            ref = (
                ctx.session.scalar(
                    select(KeyVersion.ref)
                    .join(CryptoKey, CryptoKey.id == KeyVersion.key_id)
                    .where(CryptoKey.key == name)
                )
                or b""
            )
            if algorithm.symmetric:
                rows.append(
                    (
                        "PKCS#11 encrypt 1 KiB, AES-256-GCM",
                        rate(lambda r=ref: hsm.encrypt(r, PAYLOAD), seconds),  # type: ignore[misc]
                        rate(lambda n=name: service.encrypt(ctx, n, PAYLOAD), seconds),  # type: ignore[misc]
                    )
                )
            else:
                rows.append(
                    (
                        f"PKCS#11 sign, {algorithm.value}",
                        rate(lambda r=ref, a=algorithm: hsm.sign(r, a, PAYLOAD), seconds),  # type: ignore[misc]
                        rate(lambda n=name: service.sign(ctx, n, PAYLOAD), seconds),  # type: ignore[misc]
                    )
                )
        service.flush(ctx)
    hsm.close()
    return rows


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
        hsm_rows = pkcs11_rows(rt, tmp, args.seconds)
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
    if hsm_rows:
        lines += [
            "",
            "PKCS#11 backend on a SoftHSM2 token made by the benchmark (keys generated on the token, "
            "non-extractable): the backend called directly against the same operation through the service.",
            "",
            "| operation | backend directly (ops/s) | through the service (ops/s) | service / direct |",
            "|---|---:|---:|---:|",
        ]
        for label, direct_rate, service_rate in hsm_rows:
            lines.append(f"| {label} | {direct_rate:,.0f} | {service_rate:,.0f} | {service_rate / direct_rate:.2f} |")
        lines += [
            "",
            "The token itself is the cost here: SoftHSM2 signs ECDSA P-256 at about a third of "
            "pyca/cryptography's rate and AES-GCM at about a twentieth.",
        ]
    print("\n".join(lines))
    if not args.no_write:
        write_section("keys", lines)


if __name__ == "__main__":
    main()
