"""The fast canonical encoder agrees with the rfc8785 reference on every JSON value."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from portcullis.core.canonical import canonical_bytes

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_agrees_with_reference(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_rfc8785_examples() -> None:
    # Key order by UTF-16 code units, and ECMAScript number forms (RFC 8785 section 3.2.3).
    assert canonical_bytes({"\U0001f600": 1, "\ufb33": 2}) == rfc8785.dumps({"\U0001f600": 1, "\ufb33": 2})
    assert canonical_bytes({"b": 1.0, "a": 1e21}) == b'{"a":1e+21,"b":1}'


def test_python_values_are_reduced() -> None:
    when = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert canonical_bytes({"t": when, "d": date(2026, 1, 2), "b": b"\x01"}) == (
        b'{"b":"01","d":"2026-01-02","t":"2026-11-24T09:00:00Z"}'
    )


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        canonical_bytes({"x": math.nan})
    with pytest.raises(TypeError):
        canonical_bytes({"x": object()})
