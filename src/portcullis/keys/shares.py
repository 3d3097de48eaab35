"""SLIP-39 shares of a secret (the master key's backup among custodians), on python-shamir-mnemonic.

A share is secret material: even a few of its words narrow the search. So a
`ShareError` says which share is wrong (its position: the third given, the
second entered) and why, in words that are not on the SLIP-39 word list, and
never repeats any word of a share; the library's own messages quote the first
words of a share and are never passed on.

`split` makes one group (threshold of count). `combine` and `ShareCollector`
read any SLIP-39 set, groups included, and accept more shares than needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from shamir_mnemonic import (  # type: ignore[import-untyped]
    MnemonicError,
    Share,
    generate_mnemonics,
    recover_ems,
    rs1024,
)
from shamir_mnemonic import constants as slip39
from shamir_mnemonic.shamir import ShareGroup  # type: ignore[import-untyped]
from shamir_mnemonic.wordlist import WORD_INDEX_MAP  # type: ignore[import-untyped]

MAX_SHARES = 16
SECRET_BYTES = (16, 32)
MAX_ITERATION_EXPONENT = 15


class ShareError(ValueError):
    """A share or a set of shares is unusable; the message says which and why, never its words."""


def split(
    secret: bytes,
    threshold: int,
    count: int,
    passphrase: bytes = b"",
    *,
    extendable: bool = True,
    iteration_exponent: int = 1,
) -> list[str]:
    """`count` mnemonics, any `threshold` of which give back `secret` (with the same passphrase)."""
    if not isinstance(secret, bytes):
        raise ShareError(f"secret: bytes expected, not {type(secret).__name__}")
    low, high = SECRET_BYTES
    if not low <= len(secret) <= high or len(secret) % 2:
        raise ShareError(f"secret: {len(secret)} bytes; SLIP-39 here takes an even number from {low} to {high}")
    if not isinstance(count, int) or not 1 <= count <= MAX_SHARES:
        raise ShareError(f"count: {count!r}; from 1 to {MAX_SHARES} shares")
    if not isinstance(threshold, int) or not 1 <= threshold <= count:
        raise ShareError(f"threshold: {threshold!r}; from 1 to count ({count})")
    if not isinstance(iteration_exponent, int) or not 0 <= iteration_exponent <= MAX_ITERATION_EXPONENT:
        raise ShareError(f"iteration_exponent: {iteration_exponent!r}; from 0 to {MAX_ITERATION_EXPONENT}")
    _check_passphrase(passphrase)
    # SLIP-39 forbids a 1-of-n group; 1-of-n is n groups of 1-of-1 with a group threshold of 1.
    groups = [(1, 1)] * count if threshold == 1 else [(threshold, count)]
    made = generate_mnemonics(1, groups, secret, passphrase, extendable, iteration_exponent)
    return [cast(str, m) for group in made for m in group]


def combine(mnemonics: list[str], passphrase: bytes = b"") -> bytes:
    """The secret behind `mnemonics` (a threshold of them or more), or ShareError naming the share at fault."""
    if not mnemonics:
        raise ShareError("no shares given")
    collector = ShareCollector()
    try:
        for position, mnemonic in enumerate(mnemonics, 1):
            collector._add(mnemonic, position)
        return collector.secret(passphrase)
    finally:
        collector.clear()


@dataclass(frozen=True)
class _Entry:
    position: int
    share: Any  # shamir_mnemonic.Share: carries the share's value, secret material


class ShareCollector:
    """Shares entered one at a time (unsealing), each checked as it comes, until the threshold is reached.

    Shares are kept only until `secret()` (or `clear()`); once enough are in,
    further ones are checked against the others but not kept. Python cannot
    overwrite immutable bytes, so "not kept" means unreferenced, not wiped.
    """

    def __init__(self) -> None:
        self._groups: dict[int, dict[int, _Entry]] = {}
        self._first: _Entry | None = None

    def add(self, mnemonic: str) -> int:
        """Check and keep one share; returns how many more are needed (0: call secret())."""
        return self._add(mnemonic, self.count + 1)

    @property
    def count(self) -> int:
        """How many shares are held."""
        return sum(len(members) for members in self._groups.values())

    @property
    def remaining(self) -> int:
        """How many more shares are needed, at the least (exact for what `split` makes)."""
        if self._first is None:
            return 1
        first = self._first.share
        lacking = sorted(
            [max(0, self._threshold(g) - len(members)) for g, members in self._groups.items()]
            + [1] * (first.group_count - len(self._groups))  # groups not started need one share or more
        )
        return sum(lacking[: first.group_threshold])

    def secret(self, passphrase: bytes = b"") -> bytes:
        """The secret, once enough shares are in. The shares are dropped then, and when they do not combine."""
        _check_passphrase(passphrase)
        if self._first is None:
            raise ShareError("no shares given")
        if self.remaining:
            raise ShareError(self._shortfall())
        first = self._first.share
        chosen: dict[int, Any] = {}
        for g, members in self._groups.items():
            if len(chosen) < first.group_threshold and len(members) >= self._threshold(g):
                group = ShareGroup()
                for entry in list(members.values())[: self._threshold(g)]:
                    group.add(entry.share)
                chosen[g] = group
        try:
            return cast(bytes, recover_ems(chosen).decrypt(passphrase))
        except MnemonicError:
            raise ShareError(
                "the shares do not combine: their digest does not match (one of them is altered or from another split)"
            ) from None
        except ValueError:
            raise ShareError("the shares do not combine: they hold an odd number of bytes") from None
        finally:
            self.clear()

    def clear(self) -> None:
        """Drop every share held."""
        self._groups = {}
        self._first = None

    def __enter__(self) -> ShareCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()

    def __repr__(self) -> str:
        return f"ShareCollector(held={self.count}, remaining={self.remaining})"

    # --- checks ---------------------------------------------------------------------------

    def _threshold(self, group_index: int) -> int:
        return cast(int, next(iter(self._groups[group_index].values())).share.member_threshold)

    def _add(self, mnemonic: str, position: int) -> int:
        share = _decode(mnemonic, position)
        entry = _Entry(position, share)
        first = self._first
        if first is not None:
            _check_same_set(first, entry)
        members = self._groups.get(share.group_index, {})
        for other in members.values():
            _check_same_set(other, entry, within_group=True)
        same = members.get(share.index)
        if same is not None:
            if same.share == share:
                raise ShareError(f"share {position} repeats share {same.position}")
            raise ShareError(
                f"shares {same.position} and {position} carry the same share number with different contents"
            )
        if self.remaining == 0:
            return 0  # enough held: checked, not kept
        self._groups.setdefault(share.group_index, {})[share.index] = entry
        self._first = first or entry
        return self.remaining

    def _shortfall(self) -> str:
        assert self._first is not None
        first = self._first.share
        if first.group_count == 1:
            return f"not enough shares: {self.count} of {self._threshold(first.group_index)} shares needed"
        complete = [g for g, members in self._groups.items() if len(members) >= self._threshold(g)]
        started = ", ".join(
            f"#{g + 1} holds {len(members)} of {self._threshold(g)}"
            for g, members in sorted(self._groups.items())
            if g not in complete
        )
        return f"not enough shares: {len(complete)} of {first.group_threshold} groups complete" + (
            f" (incomplete groups: {started})" if started else ""
        )


_PARAMETERS = (
    ("identifier", "set of shares (identifier)"),
    ("extendable", "extendable flag"),
    ("iteration_exponent", "iteration exponent"),
    ("group_threshold", "groups threshold"),
    ("group_count", "groups count"),
)


def _check_same_set(earlier: _Entry, entry: _Entry, *, within_group: bool = False) -> None:
    a, b = earlier.share, entry.share
    for name, what in _PARAMETERS:
        if getattr(a, name) != getattr(b, name):
            raise ShareError(f"share {entry.position} does not match share {earlier.position}: different {what}")
    if within_group and a.member_threshold != b.member_threshold:
        raise ShareError(f"share {entry.position} does not match share {earlier.position}: different threshold")
    if len(a.value) != len(b.value):
        raise ShareError(f"share {entry.position} does not match share {earlier.position}: different size")


def _decode(mnemonic: str, position: int) -> Any:
    if not isinstance(mnemonic, str):
        raise ShareError(f"share {position}: text expected, not {type(mnemonic).__name__}")
    words = mnemonic.lower().split()
    for n, word in enumerate(words, 1):
        if word not in WORD_INDEX_MAP:
            raise ShareError(f"share {position}: word {n} is not on the SLIP-39 word list")
    if len(words) < slip39.MIN_MNEMONIC_LENGTH_WORDS:
        raise ShareError(
            f"share {position}: too few words ({len(words)}; a share has {slip39.MIN_MNEMONIC_LENGTH_WORDS} or more)"
        )
    if (slip39.RADIX_BITS * (len(words) - slip39.METADATA_LENGTH_WORDS)) % 16 > 8:
        raise ShareError(f"share {position}: {len(words)} words is not a possible share size")
    indices = [WORD_INDEX_MAP[w] for w in words]
    extendable = (indices[0] * slip39.RADIX + indices[1]) >> slip39.ITERATION_EXP_LENGTH_BITS & 1
    custom = slip39.CUSTOMIZATION_STRING_EXTENDABLE if extendable else slip39.CUSTOMIZATION_STRING_ORIG
    if not rs1024.verify_checksum(indices, custom):
        raise ShareError(f"share {position}: bad checksum (a word is wrong, missing or misplaced)")
    try:
        return Share.from_mnemonic(" ".join(words))
    except MnemonicError as e:
        # The checks above leave the two the library makes on decoded fields; tell them apart without quoting it.
        why = "bad padding" if "padding" in str(e) else "groups threshold above groups count"
        raise ShareError(f"share {position}: {why}") from None


def _check_passphrase(passphrase: bytes) -> None:
    if not isinstance(passphrase, bytes) or not all(32 <= c <= 126 for c in passphrase):
        raise ShareError("passphrase: printable ASCII characters only (SLIP-39)")
