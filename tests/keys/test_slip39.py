"""SLIP-39 shares: the 45 published vectors (passphrase "TREZOR"), round trips, the collector."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from shamir_mnemonic.wordlist import WORDLIST  # type: ignore[import-untyped]

from portcullis.keys.shares import ShareCollector, ShareError, combine, split

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "data" / "vectors"
PASSPHRASE = b"TREZOR"
SLIP39_WORDS = frozenset(WORDLIST)


def _vectors() -> list[Any]:
    rows = json.loads((VECTORS / "slip39_vectors.json").read_text())
    assert len(rows) == 45
    return [
        pytest.param(mnemonics, secret, id=f"slip39-{n}") for n, (_, mnemonics, secret, _xprv) in enumerate(rows, 1)
    ]


def _assert_no_share_words(error: ShareError, mnemonics: list[str]) -> None:
    said = set(re.findall(r"[a-z]+", str(error).lower()))
    assert not said & {w for m in mnemonics for w in m.lower().split()}, str(error)
    # Stronger: the messages use no SLIP-39 word at all, so no share can ever leak through one.
    assert not said & SLIP39_WORDS, str(error)


@pytest.mark.parametrize(("mnemonics", "secret"), _vectors())
def test_vector(mnemonics: list[str], secret: str) -> None:
    if secret:
        assert combine(mnemonics, PASSPHRASE).hex() == secret
    else:
        with pytest.raises(ShareError) as caught:
            combine(mnemonics, PASSPHRASE)
        _assert_no_share_words(caught.value, mnemonics)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (2, "share 1: bad checksum"),
        (3, "share 1: bad padding"),
        (5, "not enough shares: 1 of 2 shares needed"),
        (6, "share 2 does not match share 1: different set of shares"),
        (7, "share 2 does not match share 1: different iteration exponent"),
        (8, "share 3 does not match share 1: different groups threshold"),
        (9, "share 2 does not match share 1: different groups count"),
        (10, "share 1: groups threshold above groups count"),
        (11, "shares 1 and 2 carry the same share number"),
        (12, "share 2 does not match share 1: different threshold"),
        (13, "the shares do not combine: their digest does not match"),
        (14, "not enough shares: 1 of 2 groups complete"),
        (16, r"not enough shares: 1 of 2 groups complete \(incomplete groups: #4 holds 1 of 2\)"),
        (39, "share 1: too few words"),
        (40, "share 1: 21 words is not a possible share size"),
    ],
)
def test_vector_errors_say_which_share_and_why(number: int, message: str) -> None:
    rows = json.loads((VECTORS / "slip39_vectors.json").read_text())
    with pytest.raises(ShareError, match=message):
        combine(rows[number - 1][1], PASSPHRASE)


def test_an_unknown_word_is_named_by_position_only() -> None:
    mnemonics = split(os.urandom(16), 1, 1)
    words = mnemonics[0].split()
    words[6] = "portcullis"
    with pytest.raises(ShareError, match="share 1: word 7 is not on the SLIP-39 word list") as caught:
        combine([" ".join(words)])
    assert "portcullis" not in str(caught.value)
    _assert_no_share_words(caught.value, mnemonics)


@pytest.mark.parametrize(("threshold", "count"), [(1, 1), (1, 3), (2, 3), (3, 5), (5, 5)])
@pytest.mark.parametrize("size", [16, 32])
def test_any_threshold_subset_combines(threshold: int, count: int, size: int) -> None:
    secret = os.urandom(size)
    mnemonics = split(secret, threshold, count, b"a passphrase", iteration_exponent=0)
    assert len(mnemonics) == count
    for subset in itertools.combinations(mnemonics, threshold):
        assert combine(list(subset), b"a passphrase") == secret
    assert combine(mnemonics, b"a passphrase") == secret  # more than needed is fine
    if threshold > 1:
        for subset in itertools.combinations(mnemonics, threshold - 1):
            with pytest.raises(ShareError, match=f"not enough shares: {threshold - 1} of {threshold} shares needed"):
                combine(list(subset), b"a passphrase")


def test_round_trip_with_the_defaults_and_the_original_format() -> None:
    secret = os.urandom(32)
    assert combine(split(secret, 2, 3)[1:]) == secret
    assert combine(split(secret, 2, 3, extendable=False)[:2]) == secret


def test_a_wrong_passphrase_gives_another_secret_not_an_error() -> None:
    """SLIP-39 by design: any passphrase decrypts; the key service's check value catches the wrong one."""
    secret = os.urandom(16)
    mnemonics = split(secret, 2, 2, b"right", iteration_exponent=0)
    assert combine(mnemonics, b"wrong") != secret


def test_sixteen_shares_is_the_most() -> None:
    secret = os.urandom(16)
    mnemonics = split(secret, 16, 16, iteration_exponent=0)
    assert combine(mnemonics) == secret
    with pytest.raises(ShareError, match="count: 17"):
        split(secret, 2, 17)


@pytest.mark.parametrize(
    ("secret", "threshold", "count", "options", "parameter"),
    [
        (bytes(15), 2, 3, {}, "secret: 15 bytes"),
        (bytes(17), 2, 3, {}, "secret: 17 bytes"),
        (bytes(34), 2, 3, {}, "secret: 34 bytes"),
        (bytes(16), 0, 3, {}, "threshold: 0"),
        (bytes(16), 4, 3, {}, r"threshold: 4; from 1 to count \(3\)"),
        (bytes(16), 1, 0, {}, "count: 0"),
        (bytes(16), 2, 3, {"iteration_exponent": 16}, "iteration_exponent: 16"),
        (bytes(16), 2, 3, {"passphrase": "é".encode()}, "passphrase: printable ASCII"),
    ],
)
def test_split_errors_name_the_parameter(
    secret: bytes, threshold: int, count: int, options: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ShareError, match=parameter):
        split(secret, threshold, count, **options)


def test_shares_of_two_splits_do_not_mix() -> None:
    first, second = split(os.urandom(16), 2, 3), split(os.urandom(16), 2, 3)
    with pytest.raises(ShareError, match="share 2 does not match share 1: different set of shares") as caught:
        combine([first[0], second[1]])
    _assert_no_share_words(caught.value, first + second)


def test_a_repeated_share_is_named() -> None:
    mnemonics = split(os.urandom(16), 2, 3)
    with pytest.raises(ShareError, match="share 3 repeats share 1"):
        combine([mnemonics[0], mnemonics[1], mnemonics[0].upper()])


def test_empty() -> None:
    with pytest.raises(ShareError, match="no shares given"):
        combine([])


# --- the collector ----------------------------------------------------------------------


def test_collector_counts_down_and_gives_the_secret_once() -> None:
    secret = os.urandom(32)
    mnemonics = split(secret, 3, 5, b"TREZOR", iteration_exponent=0)
    collector = ShareCollector()
    assert collector.remaining == 1  # nothing known yet: at least one
    assert collector.add(mnemonics[4]) == 2
    assert collector.add(mnemonics[0]) == 1
    with pytest.raises(ShareError, match="not enough shares: 2 of 3 shares needed"):
        collector.secret(b"TREZOR")
    assert collector.add(mnemonics[2]) == 0
    assert collector.add(mnemonics[3]) == 0  # checked, not kept
    assert collector.count == 3
    assert "3" in repr(collector)
    assert mnemonics[0].split()[4] not in repr(collector)
    assert collector.secret(b"TREZOR") == secret
    assert collector.count == 0  # shares dropped once used
    with pytest.raises(ShareError, match="no shares given"):
        collector.secret(b"TREZOR")


def test_collector_refuses_bad_shares_and_keeps_going() -> None:
    secret = os.urandom(16)
    mnemonics = split(secret, 2, 3, iteration_exponent=0)
    stranger = split(os.urandom(16), 2, 3, iteration_exponent=0)[1]
    collector = ShareCollector()
    assert collector.add(mnemonics[0]) == 1
    words = mnemonics[1].split()
    words[-1], words[-2] = words[-2], words[-1]
    for bad, why in (
        (" ".join(words), "share 2: bad checksum"),
        (stranger, "share 2 does not match share 1: different set of shares"),
        (mnemonics[0], "share 2 repeats share 1"),
    ):
        if bad.split() == mnemonics[1].split():
            continue  # the two last words happened to be the same
        with pytest.raises(ShareError, match=why) as caught:
            collector.add(bad)
        _assert_no_share_words(caught.value, [bad, *mnemonics])
    assert collector.count == 1
    assert collector.add(mnemonics[2]) == 0
    assert collector.secret() == secret


def test_collector_clear_drops_everything() -> None:
    mnemonics = split(os.urandom(16), 2, 3)
    with ShareCollector() as collector:
        collector.add(mnemonics[0])
        collector.clear()
        assert collector.count == 0
        assert collector.remaining == 1
        collector.add(mnemonics[1])
    assert collector.count == 0  # leaving the block clears too


def test_collector_with_groups_counts_the_cheapest_completion() -> None:
    """Vector 17: 2 of 4 groups; shares of group #4 (2 needed) and of group #3 (3 needed), interleaved.

    A group not yet started counts as one share at the least, since its threshold is unknown.
    """
    rows = json.loads((VECTORS / "slip39_vectors.json").read_text())
    mnemonics, secret = rows[16][1], rows[16][2]
    collector = ShareCollector()
    assert [collector.add(m) for m in mnemonics] == [2, 2, 2, 1, 0]
    assert collector.secret(PASSPHRASE).hex() == secret
