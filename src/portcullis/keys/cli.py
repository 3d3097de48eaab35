"""`portcullis keys ...`: the key register, state changes, rotation, dual-control operations, use."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.output import command, emit, out
from portcullis.keys import dual
from portcullis.keys.models import KeyState
from portcullis.keys.register import (
    KeyIn,
    change_state,
    get_key,
    key_view,
    list_keys,
    register_key,
    rotate,
    versions_of,
)
from portcullis.keys.service import backends, key_service

app = typer.Typer(help="Cryptographic keys (§26-28): register, lifecycle, dual control, use.", no_args_is_help=True)
_COLS = ["key", "name", "algorithm", "custody", "backend", "state", "critical", "rotate_by"]
STATES = {
    "activate": KeyState.ACTIVE,
    "reactivate": KeyState.ACTIVE,
    "suspend": KeyState.SUSPENDED,
    "deactivate": KeyState.DEACTIVATED,
    "compromise": KeyState.COMPROMISED,
}
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why: recorded with the change")]


@app.command("list")
@command
def list_(state: Annotated[str | None, typer.Option("--state")] = None, as_json: JsonOpt = False) -> None:
    """The key register."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit([key_view(k) for k in list_keys(ctx, state)], as_json, _COLS, title="Keys")


@app.command("show")
@command
def show(key: str, as_json: JsonOpt = False) -> None:
    """One key, its versions and their use counts (never its material)."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        k = get_key(ctx, key)
        emit(key_view(k, versions_of(ctx, k)), as_json)


def _policy(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValidationFailed(f"{path}: not a JSON policy ({e})") from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}: a policy is an object of operation -> list of who")
    return data


@app.command("register")
@command
def register(
    key: str,
    name: Annotated[str, typer.Option("--name")],
    purpose: Annotated[str, typer.Option("--purpose")],
    algorithm: Annotated[
        str, typer.Option("--algorithm", help="aes-256, ed25519, ecdsa-p256, ecdsa-secp256k1, rsa-3072, rsa-4096")
    ],
    custody: Annotated[str, typer.Option("--custody", help="internal (generated here) or external")] = "internal",
    backend: Annotated[str, typer.Option("--backend", help="software or pkcs11")] = "software",
    owner: Annotated[str | None, typer.Option("--owner", help="Email")] = None,
    custodian: Annotated[list[str] | None, typer.Option("--custodian", help="Email; repeat")] = None,
    asset: Annotated[list[str] | None, typer.Option("--asset", help="External id of an asset relying on it")] = None,
    device: Annotated[str | None, typer.Option("--device", help="External id of the asset holding it")] = None,
    location: Annotated[str, typer.Option("--location")] = "",
    critical: Annotated[bool, typer.Option("--critical")] = False,
    period: Annotated[int | None, typer.Option("--crypto-period-days")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="JSON: {operation: [any|role:R|user:ID]}")] = None,
    extractable: Annotated[bool, typer.Option("--extractable")] = False,
    present: Annotated[list[str] | None, typer.Option("--present", help="Ceremony attendee email; repeat")] = None,
    approver: Annotated[list[str] | None, typer.Option("--approver", help="Ceremony approver email; repeat")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a key; an internal one is generated now, in its backend."""
    data = KeyIn.model_validate(
        {
            "key": key,
            "name": name,
            "purpose": purpose,
            "algorithm": algorithm,
            "custody": custody,
            "backend": backend if custody == "internal" else None,
            "owner_email": owner,
            "custodian_emails": custodian or [],
            "asset_external_ids": asset or [],
            "device_external_id": device,
            "location": location,
            "critical": critical,
            "crypto_period_days": period,
            "policy": _policy(policy),
            "extractable": extractable,
            "ceremony_present": present or [],
            "ceremony_approvers": approver or [],
        }
    )
    rt = runtime()
    available = backends(rt) if data.custody.value == "internal" else {}
    with rt.work(cli_principal(rt)) as ctx:
        k = register_key(ctx, data, available.get(data.backend or ""))
        emit(key_view(k, versions_of(ctx, k)), as_json)


@app.command("rotate")
@command
def rotate_cmd(key: str, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """A new version of an internal key; new protection uses it at once."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        v = rotate(ctx, key, backends(rt)["software"], reason)
        emit({"key": key, "version": v.version}, as_json)


@app.command("state")
@command
def state(
    key: str,
    action: Annotated[str, typer.Argument(help="activate, suspend, reactivate, deactivate, compromise")],
    reason: ReasonOpt,
    as_json: JsonOpt = False,
) -> None:
    """Change a key's state (NIST SP 800-57); destruction is `keys destroy`."""
    target = STATES.get(action)
    if target is None:
        raise ValidationFailed("Unknown action", [FieldError("action", f"one of {', '.join(STATES)}")])
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(key_view(change_state(ctx, key, target, reason)), as_json)


@app.command("destroy")
@command
def destroy(key: str, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Request destruction: two custodians approve, then a grace period, then `keys execute`."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(dual.operation_view(dual.request(ctx, key, "destroy", reason)), as_json)


@app.command("approve")
@command
def approve(operation: int, as_json: JsonOpt = False) -> None:
    """Approve a dual-control operation as a custodian of its key."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(dual.operation_view(dual.approve(ctx, operation)), as_json)


@app.command("cancel")
@command
def cancel(operation: int, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Cancel a dual-control operation before it is executed."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(dual.operation_view(dual.cancel(ctx, operation, reason)), as_json)


@app.command("execute")
@command
def execute(operation: int, as_json: JsonOpt = False) -> None:
    """Execute an approved destruction once its grace period is over: material erased, history kept."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(key_view(dual.execute_destroy(ctx, operation, backends(rt))), as_json)
        key_service(rt).forget()


@app.command("sign")
@command
def sign(key: str, file: Path, as_json: JsonOpt = False) -> None:
    """Sign a file's bytes with an internal key the policy lets you use; prints the version and signature."""
    rt = runtime()
    service = key_service(rt)
    with rt.work(cli_principal(rt)) as ctx:
        version, signature = service.sign(ctx, key, file.read_bytes())
        service.flush(ctx)
    result = {"key": key, "version": version, "signature": base64.b64encode(signature).decode()}
    if as_json:
        emit(result, True)
    else:
        out.print(f"version {version}\n{result['signature']}", highlight=False)


@app.command("verify")
@command
def verify(
    key: str,
    file: Path,
    signature: Annotated[str, typer.Option("--signature", help="base64")],
    version: Annotated[int, typer.Option("--version")],
) -> None:
    """Verify a signature over a file's bytes; exit code 9 when it does not verify."""
    rt = runtime()
    service = key_service(rt)
    with rt.work(cli_principal(rt)) as ctx:
        ok = service.verify(ctx, key, file.read_bytes(), base64.b64decode(signature), version)
        service.flush(ctx)
    out.print("valid" if ok else "NOT valid", highlight=False)
    if not ok:
        raise typer.Exit(9)


@app.command("backup-key")
@command
def backup_key(
    custodian: Annotated[list[str], typer.Option("--custodian", help="Email of a share holder; repeat")],
    threshold: Annotated[int, typer.Option("--threshold", help="Shares needed to restore")],
    present: Annotated[list[str], typer.Option("--present", help="Email of a witness of the ceremony; repeat")],
) -> None:
    """Make the backup key (a ceremony): prints each custodian's SLIP-39 share once; nothing keeps them."""
    from portcullis.keys.backup import create_recipient
    from portcullis.keys.register import person_ids

    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        holders = person_ids(ctx, custodian, "--custodian")
        mnemonics = create_recipient(ctx, holders, threshold, person_ids(ctx, present, "--present"))
    for email, mnemonic in zip(custodian, mnemonics, strict=True):
        out.print(f"{email}:\n  {mnemonic}\n", highlight=False, soft_wrap=True)


@app.command("backup")
@command
def backup_cmd(out_file: Annotated[Path, typer.Option("--out", help="Where to write the backup (JSON)")]) -> None:
    """Back up every software-held key, wrapped for the backup key (no custodian needed)."""
    from portcullis.keys.backends.software import SoftwareBackend
    from portcullis.keys.backup import backup

    rt = runtime()
    software = backends(rt)["software"]
    assert isinstance(software, SoftwareBackend)
    with rt.work(cli_principal(rt)) as ctx:
        data = backup(ctx, software)
    out_file.write_bytes(data)
    out.print(f"written to {out_file}", highlight=False)


@app.command("restore")
@command
def restore_cmd(file: Path) -> None:
    """Restore a backup into this (fresh) installation; asks for the custodians' shares, one per line."""
    from portcullis.keys.backends.software import SoftwareBackend
    from portcullis.keys.backup import restore

    mnemonics: list[str] = []
    while True:
        # Prompted, never an option: a share on the command line would end up in shell history.
        line = typer.prompt("Share (empty line when done)", default="", hide_input=True, show_default=False)
        if not line.strip():
            break
        mnemonics.append(line.strip())
    rt = runtime()
    software = backends(rt)["software"]
    assert isinstance(software, SoftwareBackend)
    with rt.work(cli_principal(rt)) as ctx:
        restored = restore(ctx, software, file.read_bytes(), mnemonics)
    out.print("restored: " + ", ".join(restored), highlight=False)


@app.command("replace")
@command
def replace_cmd(
    key: str,
    cause: Annotated[str, typer.Option("--cause", help="lost, compromised or damaged")],
    reason: ReasonOpt,
    successor: Annotated[str | None, typer.Option("--successor", help="The new key's name (default KEY-rN)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a lost, compromised or damaged key: successor, link, and a task per dependant (§28)."""
    from portcullis.keys.replace import replace, replacement_view

    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        k = get_key(ctx, key)
        available = backends(rt) if k.custody == "internal" else {}
        rep = replace(ctx, key, cause, reason, available.get(k.backend or ""), successor)
        emit(replacement_view(ctx, rep), as_json)
    key_service(rt).forget()


@app.command("replacements")
@command
def replacements(as_json: JsonOpt = False) -> None:
    """Replacements and their progress."""
    from portcullis.keys.replace import list_replacements, replacement_view

    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        views = [replacement_view(ctx, r) for r in list_replacements(ctx)]
    emit(views, as_json, ["id", "old_key", "new_key", "cause", "progress", "completed_at"], title="Replacements")


@app.command("task-done")
@command
def task_done(task: int, note: Annotated[str, typer.Option("--note", help="What was done")]) -> None:
    """Mark a replacement task done."""
    from portcullis.keys.replace import complete_task, replacement_view

    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(replacement_view(ctx, complete_task(ctx, task, note)), False)


@app.command("master-split")
@command
def master_split(
    custodian: Annotated[list[str], typer.Option("--custodian", help="Email of a share holder; repeat")],
    threshold: Annotated[int, typer.Option("--threshold", help="Shares needed to unseal (2 or more)")],
    present: Annotated[list[str], typer.Option("--present", help="Email of a witness; repeat")],
    approver: Annotated[list[str], typer.Option("--approver", help="Email of an approver; repeat")],
) -> None:
    """Split the master key into SLIP-39 shares for its custodians (a ceremony); then set
    PORTCULLIS_MASTER_KEY_SOURCE=shares and remove the key file."""
    from portcullis.keys.register import person_ids
    from portcullis.keys.service import keyring
    from portcullis.keys.unseal import split_master

    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        holders = person_ids(ctx, custodian, "--custodian")
        mnemonics = split_master(
            ctx,
            keyring(rt),
            holders,
            threshold,
            person_ids(ctx, present, "--present"),
            person_ids(ctx, approver, "--approver"),
        )
    for email, mnemonic in zip(custodian, mnemonics, strict=True):
        out.print(f"{email}:\n  {mnemonic}\n", highlight=False, soft_wrap=True)


@app.command("adopt-ledger-key")
@command
def adopt_ledger_key(
    custodian: Annotated[list[str], typer.Option("--custodian", help="Email; repeat")],
    present: Annotated[list[str], typer.Option("--present", help="Email of a witness; repeat")],
    approver: Annotated[list[str], typer.Option("--approver", help="Email of an approver; repeat")],
) -> None:
    """Bring the ledger's checkpoint-signing key into the register (same verifier key); then the key file can go."""
    from portcullis.keys.ledger_key import adopt
    from portcullis.keys.register import person_ids

    rt = runtime()
    backends(rt)
    with rt.work(cli_principal(rt)) as ctx:
        k = adopt(
            ctx,
            rt,
            person_ids(ctx, custodian, "--custodian"),
            person_ids(ctx, present, "--present"),
            person_ids(ctx, approver, "--approver"),
        )
    out.print(
        f"{k.key}: adopted; checkpoints are now signed from the register. "
        f"Delete {rt.settings.effective_ledger_key_file} once it is backed up.",
        highlight=False,
    )


@app.command("export")
@command
def export_cmd(
    key: str,
    reason: ReasonOpt,
    recipient: Annotated[Path | None, typer.Option("--recipient", help="The recipient's RSA public key (PEM)")] = None,
    kek: Annotated[str | None, typer.Option("--kek", help="Or a key-encryption key in the register")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Request the export of an extractable key; two custodians approve, then `keys export-execute`."""
    if (recipient is None) == (kek is None):
        raise ValidationFailed("Whom for", [FieldError("--recipient", "give --recipient or --kek, one of them")])
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        if kek is not None:
            op = dual.request_export_to_kek(ctx, key, reason, kek)
        else:
            assert recipient is not None
            op = dual.request_export(ctx, key, reason, recipient.read_text(encoding="utf-8"))
        emit(dual.operation_view(op), as_json)


@app.command("export-execute")
@command
def export_execute(operation: int, out_file: Annotated[Path, typer.Option("--out", help="Where to write it")]) -> None:
    """Execute an approved export: the wrapped key is written once, to --out."""
    from portcullis.keys.backends.software import SoftwareBackend

    rt = runtime()
    available = backends(rt)
    software = available["software"]
    assert isinstance(software, SoftwareBackend)
    with rt.work(cli_principal(rt)) as ctx:
        package = dual.execute_export(ctx, operation, software, available)
    out_file.write_text(json.dumps(package, indent=1), encoding="utf-8")
    out.print(f"written to {out_file}", highlight=False)


@app.command("master-generate")
@command
def master_generate(
    custodian: Annotated[list[str], typer.Option("--custodian", help="Email of a share holder; repeat")],
    threshold: Annotated[int, typer.Option("--threshold", help="Shares needed to unseal (2 or more)")],
    present: Annotated[list[str], typer.Option("--present", help="Email of a witness; repeat")],
    approver: Annotated[list[str], typer.Option("--approver", help="Email of an approver; repeat")],
) -> None:
    """A fresh installation's master key, generated straight into custodians' SLIP-39 shares (a ceremony);
    run with PORTCULLIS_MASTER_KEY_SOURCE=shares. Nothing is written to disk."""
    from portcullis.keys.register import person_ids
    from portcullis.keys.service import keyring
    from portcullis.keys.unseal import generate_master

    rt = runtime()
    ring = keyring(rt)
    with rt.work(cli_principal(rt)) as ctx:
        holders = person_ids(ctx, custodian, "--custodian")
        mnemonics = generate_master(
            ctx,
            ring,
            holders,
            threshold,
            person_ids(ctx, present, "--present"),
            person_ids(ctx, approver, "--approver"),
        )
    for email, mnemonic in zip(custodian, mnemonics, strict=True):
        out.print(f"{email}:\n  {mnemonic}\n", highlight=False, soft_wrap=True)
