"""`portcullis certs ...`: the certificate and device register, discovery, expiry, renewal, the internal CA."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.certs import ca, checks, devices, discovery, files, notices, renewal
from portcullis.certs.models import DeviceKind, RenewalMethod
from portcullis.certs.register import (
    CertIn,
    cert_view,
    certificate_detail,
    get_certificate,
    import_certificates,
    list_certificates,
    register_certificate,
    retire_certificate,
)
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.output import command, emit, err, out
from portcullis.core.permissions import Permission
from portcullis.keys.service import key_service

app = typer.Typer(help="Certificates (§29-30): register, discovery, expiry, renewal.", no_args_is_help=True)
device_app = typer.Typer(
    help="Certificate-storing devices: HSMs, tokens, servers, load balancers.", no_args_is_help=True
)
ca_app = typer.Typer(help="The internal CA: issue, revoke, publish CRLs.", no_args_is_help=True)
app.add_typer(device_app, name="device")
app.add_typer(ca_app, name="ca")

_COLS = ["id", "fingerprint", "common_name", "issuer", "not_after", "status", "renewal_method"]
PassEnv = Annotated[
    str | None,
    typer.Option("--passphrase-env", help="Name of an environment variable holding the PKCS#12 passphrase"),
]


def _passphrase(var: str | None) -> bytes | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise ValidationFailed(f"The environment variable {var} is not set", [FieldError("passphrase-env", var)])
    return value.encode()


def _short(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "fingerprint": row["fingerprint"][:16]}


@app.command("list")
@command
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="unregistered, active, replaced, revoked, retired")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The certificate register, soonest expiry first."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [cert_view(c) for c in list_certificates(ctx, status=status)]
    emit(rows if as_json else [_short(r) for r in rows], as_json, _COLS, title="Certificates")


@app.command("show")
@command
def show(
    ref: Annotated[str, typer.Argument(help="Id or fingerprint (at least 8 hex digits)")], as_json: JsonOpt = False
) -> None:
    """One certificate: what it is, where it is deployed, what relies on it, its renewals."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        view = certificate_detail(ctx, ref)
    emit(view, as_json)


@app.command("scan")
@command
def scan(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="host, host:port, host:port@sni, [v6]:port, or a CIDR range like 10.0.0.0/28"),
    ] = None,
    ports: Annotated[str, typer.Option("--ports", help="Ports for targets without one, comma-separated")] = "443",
    directory: Annotated[Path | None, typer.Option("--dir", help="Scan a directory tree for certificate files")] = None,
    device: Annotated[
        str | None, typer.Option("--token", help="Read the PKCS#11 token of this registered device")
    ] = None,
    passphrase_env: PassEnv = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=2000)] = 200,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Discover certificates on TLS endpoints, in directories and on PKCS#11 tokens; unknown ones become findings."""
    rt = runtime()
    principal = cli_principal(rt)
    if not targets and directory is None and device is None:
        raise ValidationFailed("Nothing to scan: give targets, --dir or --token")
    try:
        port_list = [int(p) for p in ports.split(",") if p.strip()]
    except ValueError:
        raise ValidationFailed("Bad --ports", [FieldError("ports", f"not a list of port numbers: {ports!r}")]) from None
    reports = []
    if targets:
        show = not as_json and err.is_terminal
        bar = Progress(TextColumn("[bold]scanning"), BarColumn(), MofNCompleteColumn(), console=err)
        task = bar.add_task("scan", total=None)
        if show:
            bar.start()
        try:
            reports.append(
                discovery.scan_endpoints(
                    rt,
                    principal,
                    targets,
                    ports=port_list,
                    concurrency=concurrency,
                    timeout=timeout,
                    on_result=(lambda r: bar.advance(task)) if show else None,
                )
            )
        finally:
            if show:
                bar.stop()
    if directory is not None:
        pw = _passphrase(passphrase_env)
        reports.append(discovery.scan_directory(rt, principal, directory, passphrases={"*": pw} if pw else None))
    if device is not None:
        from portcullis.keys.service import pkcs11_backend

        reader = pkcs11_backend(rt)
        if reader is None:
            raise ValidationFailed("No PKCS#11 token is configured (PORTCULLIS_PKCS11_TOKEN, _MODULE, _PIN)")
        reports.append(discovery.scan_token(rt, principal, device, reader))  # type: ignore[arg-type]
    result = [r.as_dict() for r in reports]
    if as_json:
        emit(result, True)
        return
    for r in result:
        out.print(
            f"{r['kind']}: {r['targets']} targets, {r['reached']} reached, {r['certificates']} certificates "
            f"({r['new']} new), {len(r['changed'])} changed, {len(r['errors'])} errors; "
            f"findings open {r['findings'].get('findings', 0)} (+{r['findings'].get('opened', 0)})"
        )
        for e in r["errors"][:10]:
            err.print(f"  {e['target']}: {e['error']}")


@app.command("expiring")
@command
def expiring(
    days: Annotated[int, typer.Option("--days", min=0, help="Expiring within this many days")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Certificates in use that expire within --days, with when their renewal is due."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [
            {**cert_view(c), "renewal_due": due, "days_left": (c.not_after - ctx.now()).days}
            for c, due in checks.expiring(ctx, days)
        ]
    cols = ["id", "fingerprint", "common_name", "not_after", "days_left", "renewal_due", "status", "renewal_method"]
    emit(rows if as_json else [_short(r) for r in rows], as_json, cols, title=f"Expiring within {days} days")


def _cert_in(
    owner: str | None,
    assets: list[str] | None,
    method: str,
    directory: str | None,
    domains: list[str] | None,
    ca_key: str | None,
    deploy_cert: str | None,
    deploy_key: str | None,
    renew_percent: int | None,
    ca_bundle: str | None,
    notes: str,
) -> CertIn:
    cfg: dict[str, Any] = {}
    if directory:
        cfg["directory"] = directory
    if domains:
        cfg["domains"] = domains
    if ca_key:
        cfg["ca"] = ca_key
    if ca_bundle:
        cfg["ca_bundle"] = ca_bundle
    if deploy_cert:
        cfg["deploy"] = [{"kind": "file", "cert": deploy_cert, "key": deploy_key}]
    try:
        m = RenewalMethod(method)
    except ValueError:
        raise ValidationFailed("Bad --method", [FieldError("method", "acme, internal_ca or manual")]) from None
    return CertIn(
        owner_email=owner,
        asset_external_ids=assets or [],
        renewal_method=m,
        renewal=cfg,
        renew_at_fraction=renew_percent / 100 if renew_percent else None,
        notes=notes,
    )


OwnerOpt = Annotated[str | None, typer.Option("--owner", help="Owner's email")]
AssetOpt = Annotated[
    list[str] | None, typer.Option("--asset", help="ICT asset relying on it (external id), repeatable")
]
MethodOpt = Annotated[str, typer.Option("--method", help="acme, internal_ca or manual")]
DirOpt = Annotated[str | None, typer.Option("--acme-directory", help="ACME directory URL")]
DomainOpt = Annotated[list[str] | None, typer.Option("--domain", help="Names to renew for (default: its SANs)")]
CaOpt = Annotated[str | None, typer.Option("--ca", help="Internal CA that renews it")]
DeployCertOpt = Annotated[str | None, typer.Option("--deploy-cert", help="File a renewed certificate is written to")]
DeployKeyOpt = Annotated[str | None, typer.Option("--deploy-key", help="File its new key is written to (0600)")]
PercentOpt = Annotated[int | None, typer.Option("--renew-at-percent", min=1, max=99, help="Renew at this % left")]
BundleOpt = Annotated[str | None, typer.Option("--acme-ca-bundle", help="CA bundle for the ACME server's TLS")]


@app.command("register")
@command
def register(
    ref: Annotated[str, typer.Argument(help="Id or fingerprint of a discovered certificate")],
    owner: OwnerOpt = None,
    asset: AssetOpt = None,
    method: MethodOpt = "manual",
    acme_directory: DirOpt = None,
    domain: DomainOpt = None,
    ca_key: CaOpt = None,
    deploy_cert: DeployCertOpt = None,
    deploy_key: DeployKeyOpt = None,
    renew_at_percent: PercentOpt = None,
    acme_ca_bundle: BundleOpt = None,
    notes: Annotated[str, typer.Option("--notes")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Take a certificate into the register (or change its entry): owner, assets, renewal."""
    rt = runtime()
    data = _cert_in(
        owner,
        asset,
        method,
        acme_directory,
        domain,
        ca_key,
        deploy_cert,
        deploy_key,
        renew_at_percent,
        acme_ca_bundle,
        notes,
    )
    with rt.work(cli_principal(rt)) as ctx:
        emit(cert_view(register_certificate(ctx, ref, data)), as_json)


@app.command("import")
@command
def import_(
    file: Annotated[Path, typer.Argument(help="PEM, DER, PKCS#7 or PKCS#12 file: the certificate, then its chain")],
    passphrase_env: PassEnv = None,
    owner: OwnerOpt = None,
    asset: AssetOpt = None,
    method: MethodOpt = "manual",
    acme_directory: DirOpt = None,
    domain: DomainOpt = None,
    ca_key: CaOpt = None,
    renew_at_percent: PercentOpt = None,
    notes: Annotated[str, typer.Option("--notes")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a certificate from a file."""
    rt = runtime()
    try:
        data = file.read_bytes()
    except OSError as e:
        raise ValidationFailed(f"{file}: {e.strerror}") from None
    try:
        chain = files.load_certificates(data, source=str(file), passphrase=_passphrase(passphrase_env))
    except files.CertFileError as e:
        raise ValidationFailed(str(e), [FieldError("file", str(e))]) from None
    cert_in = _cert_in(owner, asset, method, acme_directory, domain, ca_key, None, None, renew_at_percent, None, notes)
    with rt.work(cli_principal(rt)) as ctx:
        emit(cert_view(import_certificates(ctx, chain, str(file), cert_in)), as_json)


@app.command("retire")
@command
def retire(ref: str, reason: Annotated[str, typer.Option("--reason")], as_json: JsonOpt = False) -> None:
    """Mark a certificate as no longer relied on."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(cert_view(retire_certificate(ctx, ref, reason)), as_json)


@app.command("renew")
@command
def renew(
    ref: Annotated[str | None, typer.Argument(help="Renew this certificate now; without it, every renewal due")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Renew (ACME or the internal CA), deploy to the file targets, update the register. Failures are retried."""
    rt = runtime()
    principal = cli_principal(rt)
    with rt.work(principal) as ctx:
        if ref is not None:
            only: int | None = renewal.request_renewal(ctx, ref).id
        else:
            ctx.require(Permission.CERTS_ADMIN)
            renewal.plan_renewals(ctx)
            only = None
    results = renewal.run_renewals(rt, only=only)
    if as_json:
        emit(results, True)
        return
    if not results:
        out.print("No renewal is due.")
    for r in results:
        if r.get("ok"):
            out.print(f"renewed {r['certificate'][:16]} -> {r['new'][:16]}; deployed: {r['deployed'] or 'no targets'}")
        else:
            err.print(f"FAILED {r.get('certificate', '')[:16]}: {r.get('error')} (attempt {r.get('attempts')})")
    if any(not r.get("ok") for r in results):
        raise typer.Exit(5)


@app.command("deploy")
@command
def deploy(ref: str, as_json: JsonOpt = False) -> None:
    """Write a certificate and its kept key to its file targets again."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        ctx.require(Permission.CERTS_ADMIN)
        written = renewal.deploy(ctx, rt, get_certificate(ctx, ref))
    emit({"written": written}, as_json)


@app.command("notify")
@command
def notify_(as_json: JsonOpt = False) -> None:
    """Plan the expiry notices due now and send every pending one (each once)."""
    rt = runtime()
    chans = notices.channels(rt.settings)
    with rt.work(cli_principal(rt)) as ctx:
        ctx.require(Permission.CERTS_ADMIN)
        planned = notices.plan_notices(ctx, chans)
    result = {"planned": planned, **notices.deliver_notices(rt, chans)}
    emit(result, as_json)


@app.command("check")
@command
def check(as_json: JsonOpt = False) -> None:
    """Run the certificate pass now: unregistered, expired, renewal due, device missing, chain problems."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        ctx.require(Permission.CERTS_ADMIN)
        emit(checks.certificate_pass(ctx), as_json)


# --- devices ---------------------------------------------------------------------------------


@device_app.command("add")
@command
def device_add(
    key: str,
    name: Annotated[str, typer.Option("--name")],
    kind: Annotated[str, typer.Option("--kind", help=", ".join(k.value for k in DeviceKind))],
    asset: Annotated[str | None, typer.Option("--asset", help="The ICT asset it is (external id)")] = None,
    manufacturer: Annotated[str, typer.Option("--manufacturer")] = "",
    model: Annotated[str, typer.Option("--model")] = "",
    serial: Annotated[str, typer.Option("--serial")] = "",
    location: Annotated[str, typer.Option("--location")] = "",
    match: Annotated[
        list[str] | None, typer.Option("--match", help="Token label, endpoint host, or directory prefix ending in *")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a certificate-storing device."""
    rt = runtime()
    try:
        kind_ = DeviceKind(kind)
    except ValueError:
        raise ValidationFailed("Bad --kind", [FieldError("kind", ", ".join(k.value for k in DeviceKind))]) from None
    data = devices.DeviceIn(
        key=key,
        name=name,
        kind=kind_,
        asset_external_id=asset,
        manufacturer=manufacturer,
        model=model,
        serial=serial,
        location=location,
        match=match or [],
    )
    with rt.work(cli_principal(rt)) as ctx:
        emit(devices.device_view(devices.register_device(ctx, data)), as_json)


@device_app.command("list")
@command
def device_list(as_json: JsonOpt = False) -> None:
    """The device register."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [devices.device_view(d) for d in devices.list_devices(ctx)]
    emit(rows, as_json, ["key", "name", "kind", "manufacturer", "model", "serial", "last_read_at"], title="Devices")


# --- internal CA -----------------------------------------------------------------------------


@ca_app.command("create")
@command
def ca_create(
    key: str,
    crypto_key: Annotated[str, typer.Option("--crypto-key", help="Signing key in key management")],
    common_name: Annotated[str, typer.Option("--cn")],
    organisation: Annotated[str, typer.Option("--org")] = "",
    days: Annotated[int, typer.Option("--days")] = 3650,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="DNS suffix it may certify, repeatable")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an internal CA on a key from key management (its sign policy names system:certs.ca)."""
    rt = runtime()
    data = ca.CaIn(
        key=key,
        crypto_key=crypto_key,
        common_name=common_name,
        organisation=organisation,
        days=days,
        allowed_suffixes=allow or [],
    )
    with rt.work(cli_principal(rt)) as ctx:
        emit(ca.ca_view(ca.create_ca(ctx, key_service(rt), data)), as_json)


@ca_app.command("list")
@command
def ca_list(as_json: JsonOpt = False) -> None:
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit([ca.ca_view(x) for x in ca.list_cas(ctx)], as_json, ["key", "crypto_key", "crl_number"], title="CAs")


@ca_app.command("issue")
@command
def ca_issue(
    ca_key: Annotated[str, typer.Argument(metavar="CA")],
    san: Annotated[list[str], typer.Option("--san", help="DNS name or IP, repeatable")],
    out_cert: Annotated[Path, typer.Option("--out-cert")],
    out_key: Annotated[Path, typer.Option("--out-key", help="The new key (PKCS#8 PEM, 0600)")],
    days: Annotated[int, typer.Option("--days")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Issue a server certificate on a fresh P-256 key and write both; the key is also kept sealed for redeploys."""
    rt = runtime()
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    deploy_to = {"deploy": [{"kind": "file", "cert": str(out_cert), "key": str(out_key)}]}
    with rt.work(cli_principal(rt)) as ctx:
        row = ca.issue(
            ctx,
            key_service(rt),
            ca_key,
            public_key=key.public_key(),
            sans=san,
            days=days,
            public_url=rt.settings.effective_public_url,
            registered=deploy_to,
        )
        renewal.keep_key(rt, row, key_pem)
        renewal.deploy(ctx, rt, row)
        emit(cert_view(row), as_json)


@ca_app.command("revoke")
@command
def ca_revoke(
    ref: str,
    reason: Annotated[str, typer.Option("--reason", help="e.g. key_compromise, superseded, cessation_of_operation")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a certificate the internal CA issued; a new CRL is published at once."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(cert_view(ca.revoke(ctx, key_service(rt), ref, reason)), as_json)


@ca_app.command("crl")
@command
def ca_crl(
    ca_key: Annotated[str, typer.Argument(metavar="CA")],
    output: Annotated[Path | None, typer.Option("--out", help="Write the DER CRL here")] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Sign a new CRL first")] = False,
) -> None:
    """The CA's latest CRL (PEM on standard output, or DER to --out)."""
    from cryptography import x509

    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        if publish:
            ca.publish_crl(ctx, key_service(rt), ca_key)
        ctx.require(Permission.CERTS_READ)
        der = ca.crl_der(ctx, ca_key)
    if output is not None:
        output.write_bytes(der)
        err.print(f"wrote {output}")
    else:
        out.print(x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode(), end="")
