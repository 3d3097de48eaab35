"""Chain and quality problems, each provoked by a PKI this test builds for the purpose."""

from __future__ import annotations

import hashlib
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from portcullis.certs.chain import Problem, check_chain, system_roots
from tests.certs import pki
from tests.conftest import need

NOW = pki.NOW
HOST = "shop.example.test"


def fp(made: pki.Issued) -> str:
    return hashlib.sha256(made.der).hexdigest()


def codes(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.code, p.fingerprint) for p in problems}


@pytest.fixture(scope="module")
def good() -> pki.PKI:
    return pki.make_pki(HOST)


def test_good_chain_has_no_problems(good: pki.PKI) -> None:
    assert check_chain(good.chain, hostname=HOST, roots=[good.root.cert], now=NOW) == []
    assert check_chain(good.chain, hostname=None, roots=[], now=NOW) == []
    with_root = [*good.chain, good.root.cert]
    assert check_chain(with_root, hostname=HOST, roots=[good.root.cert], now=NOW) == []


def test_host_name_forms(good: pki.PKI) -> None:
    for host in ("SHOP.Example.Test", "shop.example.test."):
        assert check_chain(good.chain, hostname=host, roots=[good.root.cert], now=NOW) == []


def test_expired_leaf() -> None:
    p = pki.make_pki(HOST, leaf={"not_before": NOW - timedelta(days=90), "not_after": NOW - timedelta(days=1)})
    problems = check_chain(p.chain, hostname=HOST, roots=[p.root.cert], now=NOW)
    assert ("expired", fp(p.leaf)) in codes(problems)
    assert ("path_invalid", fp(p.leaf)) in codes(problems)
    expired = next(x for x in problems if x.code == "expired")
    assert expired.severity == "high"
    assert (NOW - timedelta(days=1)).date().isoformat() in expired.detail


def test_expired_intermediate() -> None:
    p = pki.make_pki(HOST, intermediate={"not_before": NOW - timedelta(days=800), "not_after": NOW - timedelta(days=2)})
    problems = check_chain(p.chain, hostname=HOST, roots=[p.root.cert], now=NOW)
    assert ("expired_intermediate", fp(p.intermediate)) in codes(problems)
    assert not any(x.code == "expired" for x in problems)
    assert any(x.code == "path_invalid" for x in problems)


def test_not_yet_valid() -> None:
    p = pki.make_pki(HOST, leaf={"not_before": NOW + timedelta(days=1), "not_after": NOW + timedelta(days=90)})
    assert ("not_yet_valid", fp(p.leaf)) in codes(check_chain(p.chain, hostname=None, roots=[], now=NOW))


@pytest.mark.parametrize(
    ("key_type", "size", "severity"),
    [("rsa", 1024, "high"), ("ec", 192, "high"), ("dsa", 2048, "medium")],
)
def test_weak_keys(key_type: str, size: int, severity: str) -> None:
    p = pki.make_pki(HOST, leaf={"key_type": key_type, "key_size": size})
    problems = check_chain(p.chain, hostname=None, roots=[], now=NOW)
    assert [(x.code, x.severity, x.fingerprint) for x in problems] == [("weak_key", severity, fp(p.leaf))]
    assert str(size) in problems[0].detail


def test_strong_keys_are_not_weak() -> None:
    for key_type, size in (("rsa", 2048), ("ec", 256), ("ed25519", None)):
        p = pki.make_pki(HOST, leaf={"key_type": key_type, "key_size": size})
        assert check_chain(p.chain, hostname=HOST, roots=[p.root.cert], now=NOW) == []


def test_sha1_signature_on_the_leaf() -> None:
    p = pki.make_pki(HOST, intermediate={"key_type": "rsa"}, leaf={"hash_name": "sha1"})
    problems = check_chain(p.chain, hostname=None, roots=[], now=NOW)
    assert [(x.code, x.fingerprint) for x in problems] == [("sha1_signature", fp(p.leaf))]
    assert "sha1WithRSAEncryption" in problems[0].detail


def test_sha1_self_signed_root_does_not_matter() -> None:
    root = pki.issue("Old SHA-1 Root", ca=True, key_type="rsa", hash_name="sha1")
    assert check_chain([root.cert], hostname=None, roots=[], now=NOW) == []
    self_leaf = pki.issue("old.example.test", key_type="rsa", hash_name="md5", sans=["old.example.test"])
    assert "sha1_signature" in {x.code for x in check_chain([self_leaf.cert], hostname=None, roots=[], now=NOW)}


def test_hostname_mismatch(good: pki.PKI) -> None:
    problems = check_chain(good.chain, hostname="admin.example.test", roots=[good.root.cert], now=NOW)
    assert ("hostname_mismatch", fp(good.leaf)) in codes(problems)
    mismatch = next(x for x in problems if x.code == "hostname_mismatch")
    assert "admin.example.test" in mismatch.detail
    assert HOST in mismatch.detail
    assert any(x.code == "path_invalid" for x in problems)  # a client refuses it too


@pytest.mark.parametrize(
    ("host", "covered"),
    [
        ("a.example.test", True),
        ("A.EXAMPLE.TEST", True),
        ("a.b.example.test", False),
        ("example.test", False),
        ("192.0.2.10", True),
        ("192.0.2.11", False),
        ("[2001:db8::5]", True),
    ],
)
def test_wildcard_and_ip_names(host: str, covered: bool) -> None:
    p = pki.make_pki(HOST, leaf={"sans": ["*.example.test", "192.0.2.10", "2001:db8::5"]})
    problems = check_chain(p.chain, hostname=host, roots=[p.root.cert], now=NOW)
    assert ("hostname_mismatch" in {x.code for x in problems}) is not covered
    assert ("path_invalid" in {x.code for x in problems}) is not covered  # the verifier agrees


def test_leaf_without_san_is_a_mismatch_even_when_cn_matches() -> None:
    p = pki.make_pki(HOST, leaf={"sans": None})
    problems = check_chain(p.chain, hostname=HOST, roots=[p.root.cert], now=NOW)
    mismatch = next(x for x in problems if x.code == "hostname_mismatch")
    assert "RFC 6125" in mismatch.detail
    assert HOST in mismatch.detail
    assert "CN" in mismatch.detail
    assert any(x.code == "path_invalid" for x in problems)


def test_untrusted_root_is_path_invalid(good: pki.PKI) -> None:
    stranger = pki.issue("Some Other Root", ca=True)
    problems = check_chain(good.chain, hostname=HOST, roots=[stranger.cert], now=NOW)
    invalid = [x for x in problems if x.code == "path_invalid"]
    assert [x.fingerprint for x in invalid] == [fp(good.leaf)]
    assert "validation failed" in invalid[0].detail  # the verifier's own message is carried
    assert ("incomplete_chain", fp(good.intermediate)) in codes(problems)


def test_no_roots_at_all(good: pki.PKI) -> None:
    problems = check_chain(good.chain, hostname=HOST, roots=[], now=NOW)
    assert ("path_invalid", fp(good.leaf)) in codes(problems)


def test_self_signed_leaf() -> None:
    alone = pki.issue(HOST, sans=[HOST])
    offline = check_chain([alone.cert], hostname=None, roots=[], now=NOW)
    assert [(x.code, x.severity, x.fingerprint) for x in offline] == [("self_signed_leaf", "medium", fp(alone))]
    served = check_chain([alone.cert], hostname=HOST, roots=[pki.issue("R", ca=True).cert], now=NOW)
    assert {x.code for x in served} == {"self_signed_leaf", "path_invalid"}


def test_incomplete_chain(good: pki.PKI) -> None:
    problems = check_chain([good.leaf.cert], hostname=HOST, roots=[good.root.cert], now=NOW)
    incomplete = [x for x in problems if x.code == "incomplete_chain"]
    assert [x.fingerprint for x in incomplete] == [fp(good.leaf)]
    assert "CN=Test Intermediate CA" in incomplete[0].detail
    assert any(x.code == "path_invalid" for x in problems)
    # Found in a file, a lone leaf is normal: its chain lives elsewhere.
    assert check_chain([good.leaf.cert], hostname=None, roots=[good.root.cert], now=NOW) == []


def test_leaf_issued_by_a_root_needs_no_intermediate() -> None:
    root = pki.issue("Direct Root", ca=True)
    leaf = pki.issue(HOST, issuer=root, sans=[HOST])
    assert check_chain([leaf.cert], hostname=HOST, roots=[root.cert], now=NOW) == []


def test_name_match_without_signature_is_not_an_issuer(good: pki.PKI) -> None:
    impostor = pki.issue("Test Intermediate CA", ca=True, issuer=good.root)  # same name, other key
    problems = check_chain([good.leaf.cert, impostor.cert], hostname=HOST, roots=[good.root.cert], now=NOW)
    assert ("incomplete_chain", fp(good.leaf)) in codes(problems)


def test_bad_arguments(good: pki.PKI) -> None:
    with pytest.raises(ValueError, match="at least the leaf"):
        check_chain([], hostname=HOST, roots=[], now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_chain(good.chain, hostname=HOST, roots=[], now=datetime(2026, 1, 1))


def test_system_roots() -> None:
    paths = ssl.get_default_verify_paths()
    bundle = next((Path(p) for p in (paths.cafile, paths.openssl_cafile) if p and Path(p).is_file()), None)
    if bundle is None:
        need("a system CA bundle (Debian's ca-certificates)")
    assert bundle is not None
    expected = len(re.findall(rb"-----BEGIN CERTIFICATE-----", bundle.read_bytes()))
    roots = system_roots()
    assert len(roots) == expected
    assert all(isinstance(r, x509.Certificate) for r in roots)
    roots.clear()  # the caller's copy: the cached list is not touched
    assert len(system_roots()) == expected
    now = datetime.now(UTC)
    assert sum(1 for r in system_roots() if r.not_valid_after_utc > now) > expected // 2
