"""Loading certificates from files of every format, and scanning directory trees of good and bad files."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from portcullis.certs.files import MAX_FILE_BYTES, CertFileError, load_certificates, scan_directory
from tests.certs import pki
from tests.conftest import need

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def tree() -> pki.PKI:
    return pki.make_pki("files.example.test")


def ders(certs: list[x509.Certificate]) -> list[bytes]:
    return [c.public_bytes(DER) for c in certs]


def openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        need("the openssl command line tool")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def test_pem_bundle_in_order_with_text_between_blocks(tree: pki.PKI) -> None:
    data = b"subject=CN=leaf\n" + tree.leaf.pem + b"\nBag Attributes\n" + tree.intermediate.pem + tree.root.pem
    assert ders(load_certificates(data, source="chain.pem")) == [tree.leaf.der, tree.intermediate.der, tree.root.der]


def test_crlf_pem(tree: pki.PKI) -> None:
    data = tree.leaf.pem.replace(b"\n", b"\r\n")
    assert ders(load_certificates(data, source="win.crt")) == [tree.leaf.der]


def test_pem_with_private_keys_gives_only_certificates(tree: pki.PKI) -> None:
    key = tree.leaf.key_pem()
    encrypted = tree.intermediate.key_pem(b"hunter2")
    data = key + tree.leaf.pem + encrypted + tree.intermediate.pem
    certs = load_certificates(data, source="combined.pem")
    assert ders(certs) == [tree.leaf.der, tree.intermediate.der]


def test_key_material_never_in_errors(tree: pki.PKI) -> None:
    key = tree.leaf.key_pem()
    broken = tree.intermediate.pem.replace(b"\n", b"\n!!!\n", 3)
    with pytest.raises(CertFileError) as caught:
        load_certificates(key + tree.leaf.pem + broken, source="combined.pem")
    message = str(caught.value)
    for line in key.decode().splitlines()[1:-1]:
        assert line not in message
    assert "block 3" in message


def test_key_only_pem_holds_no_certificates(tree: pki.PKI) -> None:
    assert load_certificates(tree.leaf.key_pem(), source="server.key.pem") == []


def test_corrupt_second_block_named_with_its_line(tree: pki.PKI) -> None:
    first = tree.leaf.pem
    second = tree.intermediate.pem.decode().splitlines(keepends=True)
    second[3] = "!" + second[3][1:]  # not base64
    data = first + "".join(second).encode()
    line = first.count(b"\n") + 1
    with pytest.raises(CertFileError) as caught:
        load_certificates(data, source="x.pem")
    assert str(caught.value).startswith(f"x.pem: block 2 (line {line}): not a valid certificate")
    assert caught.value.source == "x.pem"


def test_second_block_with_good_base64_but_bad_der(tree: pki.PKI) -> None:
    truncated = tree.intermediate.der[:-40]
    b64 = base64.encodebytes(truncated).decode()
    data = tree.leaf.pem + f"-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n".encode()
    line = tree.leaf.pem.count(b"\n") + 1
    with pytest.raises(CertFileError, match=rf"^x\.pem: block 2 \(line {line}\): not a valid certificate \("):
        load_certificates(data, source="x.pem")


def test_unterminated_and_malformed_blocks(tree: pki.PKI) -> None:
    cut = tree.leaf.pem.replace(b"-----END CERTIFICATE-----", b"")
    with pytest.raises(CertFileError, match=r"^a\.pem: block 1 \(line 1\): BEGIN CERTIFICATE has no matching END"):
        load_certificates(cut, source="a.pem")
    mangled = tree.leaf.pem + tree.intermediate.pem.replace(
        b"-----BEGIN CERTIFICATE-----", b"----BEGIN CERTIFICATE-----"
    )
    line = tree.leaf.pem.count(b"\n") + 1
    with pytest.raises(CertFileError, match=rf"^b\.pem: line {line}: malformed PEM"):
        load_certificates(mangled, source="b.pem")


def test_other_pem_labels(tree: pki.PKI) -> None:
    x509_label = tree.leaf.pem.replace(b" CERTIFICATE-----", b" X509 CERTIFICATE-----")
    assert ders(load_certificates(x509_label, source="old.pem")) == [tree.leaf.der]


def test_trusted_certificate_from_openssl(tree: pki.PKI, tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(tree.root.pem)
    openssl("x509", "-in", "c.pem", "-addtrust", "serverAuth", "-trustout", "-out", "t.pem", cwd=tmp_path)
    data = (tmp_path / "t.pem").read_bytes()
    assert b"BEGIN TRUSTED CERTIFICATE" in data
    assert ders(load_certificates(data, source="t.pem")) == [tree.root.der]


def test_der(tree: pki.PKI) -> None:
    assert ders(load_certificates(tree.leaf.der, source="leaf.der")) == [tree.leaf.der]


def test_der_with_trailing_garbage(tree: pki.PKI) -> None:
    with pytest.raises(CertFileError, match=r"^leaf\.cer: not a valid DER certificate"):
        load_certificates(tree.leaf.der + b"\x00junk", source="leaf.cer")


@pytest.mark.parametrize("encoding", [DER, PEM])
def test_pkcs7(tree: pki.PKI, encoding: serialization.Encoding) -> None:
    data = pkcs7.serialize_certificates([tree.leaf.cert, tree.intermediate.cert], encoding)
    # A SET OF is sorted in DER, so the bundle's order is not the order given.
    assert sorted(ders(load_certificates(data, source="b.p7b"))) == sorted([tree.leaf.der, tree.intermediate.der])


def test_pkcs7_ber_indefinite_length(tree: pki.PKI) -> None:
    der = pkcs7.serialize_certificates([tree.leaf.cert], DER)
    assert der[1] == 0x82  # a two-octet length, rewritten below as BER's indefinite form
    ber = b"\x30\x80" + der[4:] + b"\x00\x00"
    assert ders(load_certificates(ber, source="windows.p7b")) == [tree.leaf.der]


def test_pkcs7_from_openssl(tree: pki.PKI, tmp_path: Path) -> None:
    (tmp_path / "bundle.pem").write_bytes(tree.leaf.pem + tree.intermediate.pem)
    openssl("crl2pkcs7", "-nocrl", "-certfile", "bundle.pem", "-out", "b.p7b", cwd=tmp_path)
    openssl("crl2pkcs7", "-nocrl", "-certfile", "bundle.pem", "-outform", "DER", "-out", "b.p7c", cwd=tmp_path)
    expected = sorted([tree.leaf.der, tree.intermediate.der])
    for name in ("b.p7b", "b.p7c"):
        got = load_certificates((tmp_path / name).read_bytes(), source=name)
        assert sorted(ders(got)) == expected


def test_pkcs12_with_passphrase(tree: pki.PKI) -> None:
    data = pkcs12.serialize_key_and_certificates(
        b"web",
        tree.leaf.key,  # type: ignore[arg-type]
        tree.leaf.cert,
        [tree.intermediate.cert, tree.root.cert],
        serialization.BestAvailableEncryption(b"s3cret-pass"),
    )
    got = load_certificates(data, source="keys.p12", passphrase=b"s3cret-pass")
    assert ders(got) == [tree.leaf.der, tree.intermediate.der, tree.root.der]
    for wrong in (b"not-it", None):
        with pytest.raises(CertFileError) as caught:
            load_certificates(data, source="keys.p12", passphrase=wrong)
        assert str(caught.value) == "keys.p12: PKCS#12 passphrase is wrong or missing"
        assert "s3cret" not in str(caught.value)
        assert "not-it" not in str(caught.value)


def test_damaged_pkcs12(tree: pki.PKI) -> None:
    data = pkcs12.serialize_key_and_certificates(
        b"web",
        tree.leaf.key,  # type: ignore[arg-type]
        tree.leaf.cert,
        None,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(CertFileError, match=r"^keys\.pfx: not a valid PKCS#12 file$"):
        load_certificates(data[: len(data) // 2], source="keys.pfx", passphrase=b"pw")


@pytest.mark.parametrize("extra", [[], ["-legacy"]])
def test_pkcs12_from_openssl(tree: pki.PKI, tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "c.pem").write_bytes(tree.leaf.pem)
    (tmp_path / "ca.pem").write_bytes(tree.intermediate.pem)
    (tmp_path / "k.pem").write_bytes(tree.leaf.key_pem())
    openssl(
        "pkcs12", "-export", *extra, "-in", "c.pem", "-inkey", "k.pem", "-certfile", "ca.pem",
        "-passout", "pass:op3nssl", "-out", "o.p12", cwd=tmp_path,
    )  # fmt: skip
    got = load_certificates((tmp_path / "o.p12").read_bytes(), source="o.p12", passphrase=b"op3nssl")
    assert ders(got) == [tree.leaf.der, tree.intermediate.der]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "file is empty"),
        (b"  \n", "file is empty"),
        (b"hello, I am not a certificate\n", "not a recognised certificate format"),
        (b"\x04\x03abc", "not a recognised certificate format"),
        (b"\x30\x03\x01\x01\xff", "not a recognised certificate format"),
    ],
)
def test_not_certificates(data: bytes, reason: str) -> None:
    with pytest.raises(CertFileError, match=rf"^junk\.crt: {reason}"):
        load_certificates(data, source="junk.crt")


def _p12(made: pki.Issued, passphrase: bytes) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"x",
        made.key,  # type: ignore[arg-type]
        made.cert,
        None,
        serialization.BestAvailableEncryption(passphrase),
    )


def test_scan_directory_mixes_good_and_bad_files(tree: pki.PKI, tmp_path: Path) -> None:
    root = tmp_path / "scan"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "other").mkdir()
    outside = tmp_path / "outside.pem"
    outside.write_bytes(tree.root.pem)

    broken = tree.intermediate.pem.replace(b"\n", b"\n%%\n", 2)
    (root / "a_broken.pem").write_bytes(tree.leaf.pem + broken)  # sorts first: the scan must go on
    (root / "a_empty.cer").write_bytes(b"")
    (root / "good.pem").write_bytes(tree.leaf.pem + tree.intermediate.pem)
    (root / "UPPER.CRT").write_bytes(tree.root.der)
    (root / "notes.txt").write_bytes(b"not a certificate, and not looked at")
    (root / "sub" / "leaf.der").write_bytes(tree.leaf.der)
    (root / "sub" / "deeper" / "store.p12").write_bytes(_p12(tree.intermediate, b"glob-pass"))
    (root / "other" / "wrong.pfx").write_bytes(_p12(tree.leaf, b"right-pass"))
    with (root / "big.crt").open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    (root / "link.pem").symlink_to(outside)
    (root / "dangling.pem").symlink_to(tmp_path / "missing.pem")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    os.mkfifo(root / "pipe.pem")
    passphrases = {"*.p12": b"glob-pass", "wrong.pfx": b"not-the-pass"}

    found, problems = scan_directory(root, passphrases=passphrases)
    got = {(f.path.relative_to(root).as_posix(), f.index_in_file, f.certificate.public_bytes(DER)) for f in found}
    assert got == {
        ("good.pem", 0, tree.leaf.der),
        ("good.pem", 1, tree.intermediate.der),
        ("UPPER.CRT", 0, tree.root.der),
        ("sub/leaf.der", 0, tree.leaf.der),
        ("sub/deeper/store.p12", 0, tree.intermediate.der),
    }
    reasons = {p.path.relative_to(root).as_posix(): p.reason for p in problems}
    assert set(reasons) == {"a_broken.pem", "a_empty.cer", "big.crt", "other/wrong.pfx", "pipe.pem"}
    line = tree.leaf.pem.count(b"\n") + 1
    assert reasons["a_broken.pem"].startswith(f"block 2 (line {line}): not a valid certificate")
    assert reasons["a_empty.cer"] == "file is empty"
    assert "10 MiB" in reasons["big.crt"]
    assert reasons["other/wrong.pfx"] == "PKCS#12 passphrase is wrong or missing"
    assert reasons["pipe.pem"] == "not a regular file"
    assert not any("pass" in r and "PKCS#12" not in r for r in reasons.values())

    found, problems = scan_directory(root, passphrases=passphrases, follow_symlinks=True)
    paths = {f.path.relative_to(root).as_posix() for f in found}
    assert "link.pem" in paths
    assert not any(p.startswith("sub/loop") for p in paths)  # the loop back to root is entered once, not forever
    reasons = {p.path.relative_to(root).as_posix(): p.reason for p in problems}
    assert reasons["dangling.pem"].startswith("cannot read:")


def test_scan_reports_unreadable_file(tree: pki.PKI, tmp_path: Path) -> None:
    unreadable = None
    if os.geteuid() == 0:
        # Permission bits do not stop root (CI runs as root); a socket named like a certificate cannot be opened
        # by anyone, so the same refusal is met either way.
        unreadable = socket.socket(socket.AF_UNIX)
        unreadable.bind(str(tmp_path / "secret.pem"))
    else:
        (tmp_path / "secret.pem").write_bytes(tree.leaf.pem)
        (tmp_path / "secret.pem").chmod(0)
    (tmp_path / "ok.pem").write_bytes(tree.leaf.pem)
    found, problems = scan_directory(tmp_path)
    assert [f.path.name for f in found] == ["ok.pem"]
    assert [(p.path.name, p.reason.startswith("cannot read:")) for p in problems] == [("secret.pem", True)]
    if unreadable is not None:
        unreadable.close()


def test_scan_extensions_are_configurable(tree: pki.PKI, tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(tree.leaf.pem)
    (tmp_path / "b.cert").write_bytes(tree.leaf.pem)
    found, _ = scan_directory(tmp_path, extensions=(".cert",))
    assert [f.path.name for f in found] == ["b.cert"]
