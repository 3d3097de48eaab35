"""The ledger from the command line, and evidence bundles checked by both verifiers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portcullis.cli import app
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.core.settings import get_settings
from portcullis.ledger import merkle
from portcullis.ledger.note import VerifierKey
from tests.conftest import need
from tests.factories import make_user
from tests.ledger.test_tamper import _as_owner, _fill

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tools" / "verify_bundle.py"


@pytest.fixture
def cli(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", rt.settings.effective_database_url)
    auditor = make_user(rt, Role.AUDITOR)
    monkeypatch.setenv("PORTCULLIS_TOKEN", auditor.token)
    get_settings.cache_clear()
    _fill(rt, 70)
    yield CliRunner()
    get_settings.cache_clear()


def _ok(result: object) -> str:
    assert getattr(result, "exit_code", None) == 0, getattr(result, "output", "")
    return str(getattr(result, "output", ""))


def test_pubkey_prove_and_verify(cli: CliRunner, rt: Runtime) -> None:
    key = VerifierKey.parse(_ok(cli.invoke(app, ["ledger", "pubkey"])))
    assert key == rt.signer.verifier
    _ok(cli.invoke(app, ["ledger", "checkpoint"]))
    proof = json.loads(_ok(cli.invoke(app, ["ledger", "prove", "audit", "42", "--json"])))
    leaf = bytes.fromhex(proof["leaf_hash"])
    path = [bytes.fromhex(h) for h in proof["proof"]]
    assert merkle.verify_inclusion(leaf, 42, proof["tree_size"], path, bytes.fromhex(proof["root"]))
    report = json.loads(_ok(cli.invoke(app, ["ledger", "verify", "--json"])))
    assert report[0]["ok"] is True


def test_verify_exits_9_and_names_the_record(cli: CliRunner, rt: Runtime) -> None:
    _ok(cli.invoke(app, ["ledger", "checkpoint"]))
    _as_owner(rt, "UPDATE ledger_record SET payload = :p WHERE seq = 12", p=b"{}")
    result = cli.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 9
    assert "audit[12]: changed" in result.output


def test_prove_beyond_the_checkpoint_is_refused(cli: CliRunner) -> None:
    _ok(cli.invoke(app, ["ledger", "checkpoint"]))
    result = cli.invoke(app, ["ledger", "prove", "audit", "100000"])
    assert result.exit_code == 3
    assert "not covered by the latest checkpoint" in result.output


def _bundle(cli: CliRunner, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "evidence.zip"
    _ok(cli.invoke(app, ["evidence", "bundle", "--out", str(out), *args]))
    return out


def _standalone(bundle: Path, key: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, str(VERIFIER), str(bundle), "--key", key], capture_output=True, text=True, timeout=120, check=False
    )


def test_full_bundle_verifies_with_both_verifiers(cli: CliRunner, rt: Runtime, tmp_path: Path) -> None:
    bundle = _bundle(cli, tmp_path)
    key = str(rt.signer.verifier)
    _ok(cli.invoke(app, ["verify-bundle", str(bundle), "--key", key]))
    done = _standalone(bundle, key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bundle verifies" in done.stdout


def test_selected_bundle_carries_proofs(cli: CliRunner, rt: Runtime, tmp_path: Path) -> None:
    bundle = _bundle(cli, tmp_path, "--stream", "audit", "--object-type", "thing", "--object-id", "7")
    with zipfile.ZipFile(bundle) as z:
        records = z.read("audit/records.jsonl").splitlines()
        assert len(records) == 1
        assert json.loads(records[0])["object_id"] == "7"
        assert "audit/proofs.jsonl" in z.namelist()
    done = _standalone(bundle, str(rt.signer.verifier))
    assert done.returncode == 0, done.stdout + done.stderr


def _rewrite(bundle: Path, name: str, change: bytes, fix_manifest: bool) -> None:
    with zipfile.ZipFile(bundle) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files[name] = change
    if fix_manifest:
        import hashlib

        manifest = json.loads(files["manifest.json"])
        manifest["files"][name] = hashlib.sha256(change).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(bundle, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)


@pytest.mark.parametrize("fix_manifest", [False, True])
def test_tampered_bundle_fails_both_verifiers(cli: CliRunner, rt: Runtime, tmp_path: Path, fix_manifest: bool) -> None:
    bundle = _bundle(cli, tmp_path)
    with zipfile.ZipFile(bundle) as z:
        lines = z.read("audit/records.jsonl").splitlines()
    lines[5] = lines[5].replace(b"thing", b"THING")
    _rewrite(bundle, "audit/records.jsonl", b"".join(x + b"\n" for x in lines), fix_manifest)
    key = str(rt.signer.verifier)
    assert cli.invoke(app, ["verify-bundle", str(bundle), "--key", key]).exit_code == 9
    assert _standalone(bundle, key).returncode == 1


def test_bundle_against_another_key_fails(cli: CliRunner, rt: Runtime, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from portcullis.ledger.note import Signer

    bundle = _bundle(cli, tmp_path)
    other = str(Signer(rt.signer.name, Ed25519PrivateKey.generate()).verifier)
    assert cli.invoke(app, ["verify-bundle", str(bundle), "--key", other]).exit_code == 9
    assert _standalone(bundle, other).returncode == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the verifier never sees a database
def test_standalone_verifier_needs_only_cryptography(cli: CliRunner, rt: Runtime, tmp_path: Path) -> None:
    """In a fresh virtual environment holding nothing but `cryptography`."""
    bundle = _bundle(cli, tmp_path)
    env_dir = tmp_path / "auditor-venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    pip = subprocess.run(
        [py, "-m", "pip", "install", "-q", "cryptography"], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if pip.returncode != 0:
        need(f"cannot install cryptography into a fresh venv: {pip.stderr[-300:]}")
    listed = subprocess.run([py, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "portcullis" not in names
    assert "sqlalchemy" not in names
    done = _standalone(bundle, str(rt.signer.verifier), python=py)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bundle verifies" in done.stdout
