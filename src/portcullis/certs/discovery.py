"""Discovery (§29 "kept up to date"): TLS endpoints, directories and PKCS#11 tokens into the register.

The network and file work happens outside any database transaction (a scan of
a thousand endpoints must not hold locks); what it found is then recorded in
one unit of work: certificates by fingerprint, deployments, changes of the
certificate at a known place, a `cert.scan` record summing up the scan, and the
certificate pass, so findings reflect the scan at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from portcullis.certs import checks, devices, files, tls_scan, x509info
from portcullis.certs.models import DeploymentKind
from portcullis.certs.register import Found, Place, record_found
from portcullis.core.context import Context, Principal
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.core.runtime import Runtime
from portcullis.ledger.service import record_change


@dataclass
class ScanReport:
    kind: str
    targets: int = 0
    reached: int = 0
    certificates: int = 0
    new: int = 0
    changed: list[dict[str, str | None]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    findings: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _allowed(rt: Runtime, principal: Principal) -> None:
    # Checked before the scan: an unauthorised caller must not get to probe the network or read files.
    with rt.work(principal) as ctx:
        ctx.require(Permission.CERTS_ADMIN)


def _tally(report: ScanReport, found: Found) -> None:
    report.certificates += 1
    report.new += len(found.new)
    if found.replaced is not None:
        report.changed.append({"was": found.replaced.fingerprint, "now": found.leaf.fingerprint})


def _finish(ctx: Context, report: ScanReport, what: Mapping[str, Any]) -> None:
    report.findings = checks.certificate_pass(ctx)
    summary = {k: v for k, v in report.as_dict().items() if k != "errors"}
    # Errors go in by count and first few: a range scan's thousand refused ports would swamp the record.
    record_change(
        ctx,
        "cert.scan",
        "cert_scan",
        None,
        None,
        {**summary, **what},
        errors=len(report.errors),
        first_errors=report.errors[:20],
    )


def scan_endpoints(
    rt: Runtime,
    principal: Principal,
    specs: Sequence[str],
    *,
    ports: Sequence[int] = (443,),
    concurrency: int = 200,
    timeout: float = 5.0,
    on_result: Callable[[tls_scan.ScanResult], None] | None = None,
) -> ScanReport:
    """Scan TLS endpoints ("host[:port][@sni]", CIDR ranges) and record every chain served."""
    try:
        endpoints = tls_scan.parse_targets(specs, ports)
    except ValueError as exc:
        raise ValidationFailed("The scan targets are not valid", [FieldError("targets", str(exc))]) from exc
    _allowed(rt, principal)
    results = tls_scan.scan_sync(endpoints, concurrency=concurrency, timeout=timeout, on_result=on_result)
    report = ScanReport("endpoints", targets=len(endpoints))
    with rt.work(principal) as ctx:
        for r in results:
            if r.error is not None or not r.chain:
                report.errors.append({"target": r.endpoint.label, "error": r.error or "no certificate sent"})
                continue
            report.reached += 1
            try:
                chain = [x509.load_der_x509_certificate(der) for der in r.chain]
            except ValueError as exc:
                report.errors.append({"target": r.endpoint.label, "error": f"unparseable certificate: {exc}"})
                continue
            _tally(report, record_found(ctx, chain, Place(DeploymentKind.ENDPOINT, r.endpoint.label)))
        _finish(ctx, report, {"specs": list(specs)[:50], "ports": list(ports)})
    return report


def _leaves_and_issuers(certs: list[x509.Certificate]) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    cas = {id(c) for c in certs if x509info.describe(c).is_ca}
    return [c for c in certs if id(c) not in cas], [c for c in certs if id(c) in cas]


def scan_directory(
    rt: Runtime,
    principal: Principal,
    root: Path,
    *,
    passphrases: Mapping[str, bytes] | None = None,
) -> ScanReport:
    """Scan a directory tree for certificate files (PEM, DER, PKCS#7, PKCS#12) and record what they hold."""
    if not root.is_dir():
        raise ValidationFailed("Not a directory", [FieldError("path", f"{root} is not a directory")])
    _allowed(rt, principal)
    found, problems = files.scan_directory(root, passphrases=passphrases)
    by_file: dict[Path, list[x509.Certificate]] = {}
    for item in found:
        by_file.setdefault(item.path, []).append(item.certificate)
    report = ScanReport("directory", targets=len(by_file) + len(problems))
    report.errors = [{"target": str(p.path), "error": p.reason} for p in problems]
    with rt.work(principal) as ctx:
        for path, certs in sorted(by_file.items()):
            report.reached += 1
            leaves, cas = _leaves_and_issuers(certs)
            # A file of leaves holds each at its own place; a file of CA certificates (a bundle) holds each too.
            placed = leaves or cas
            for i, cert in enumerate(placed):
                location = str(path) if len(placed) == 1 else f"{path}#{i}"
                chain = [cert, *[c for c in cas if c is not cert]]
                _tally(report, record_found(ctx, chain, Place(DeploymentKind.FILE, location)))
        _finish(ctx, report, {"root": str(root)})
    return report


def scan_token(rt: Runtime, principal: Principal, device_key: str, reader: devices.TokenReader) -> ScanReport:
    """Read a PKCS#11 token: its identity and objects into the device register, its certificates into the register."""
    _allowed(rt, principal)
    report = ScanReport("pkcs11", targets=1)
    with rt.work(principal) as ctx:
        _, found = devices.read_token(ctx, device_key, reader)
        report.reached = 1
        for f in found:
            _tally(report, f)
        _finish(ctx, report, {"device": device_key})
    return report
