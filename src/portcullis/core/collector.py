"""Pausing Python's cyclic garbage collector around bulk work.

Appending or verifying a batch builds hundreds of thousands of short-lived
tuples; each few hundred allocations the collector would scan the young
generation, and now and then every object the process holds, though none of
these tuples forms a cycle (reference counting frees them). Pausing it for the
batch removes that work; it is switched back on afterwards as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
