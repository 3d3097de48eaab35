"""The ledger's checkpoint-signing key adopted into the key register: the same verifier key, checkpoints signed
from the register's copy once the key file is gone, and no signing with a key that is no longer active."""

from __future__ import annotations

import pytest

from portcullis.core.errors import PortcullisError
from portcullis.core.runtime import Runtime
from portcullis.keys.ledger_key import LEDGER_KEY, adopt
from portcullis.keys.models import KeyState
from portcullis.keys.register import change_state, key_by_name
from portcullis.ledger import operations
from portcullis.ledger.models import LedgerStream
from portcullis.ledger.verify import verify_stream
from tests.keys.world import KeyWorld, build_key_world


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def _restart(w: KeyWorld) -> Runtime:
    return Runtime.build(w.rt.settings, w.rt.clock)


def test_the_adopted_key_signs_with_the_same_verifier_key(w: KeyWorld) -> None:
    verifier = str(w.rt.signer.verifier)
    people = [w.people[n] for n in ("carla", "cedric", "chloe")]
    with w.rt.work(w.p("sofia")) as ctx:
        adopt(ctx, w.rt, people, present=people[:2], approvers=[w.people["sofia"], w.people["aude"]])
        assert key_by_name(ctx, LEDGER_KEY).critical
    w.rt.settings.effective_ledger_key_file.unlink()  # the register's copy is the only one now
    later = _restart(w)
    try:
        assert str(later.signer.verifier) == verifier
        assert not later.settings.effective_ledger_key_file.exists()  # not recreated: the register answered
        with later.work(w.p("sofia")) as ctx:
            assert operations.sign_checkpoints(ctx, later.signer)
        with later.session() as s:
            audit = s.query(LedgerStream).filter_by(name="audit").one()
            assert verify_stream(s, audit, w.rt.signer.verifier).ok
    finally:
        later.engine.dispose()


def test_a_ledger_key_that_is_not_active_signs_nothing(w: KeyWorld) -> None:
    people = [w.people[n] for n in ("carla", "cedric")]
    with w.rt.work(w.p("sofia")) as ctx:
        adopt(ctx, w.rt, people, present=people, approvers=people)
        change_state(ctx, LEDGER_KEY, KeyState.COMPROMISED, "the key file was found on a stolen laptop")
    later = _restart(w)
    try:
        with pytest.raises(PortcullisError, match="compromised"):
            _ = later.signer
    finally:
        later.engine.dispose()
