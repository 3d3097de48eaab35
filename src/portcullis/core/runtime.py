"""The running instance: settings, engine, session factory and clock, built once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portcullis.core.clock import Clock, SystemClock
from portcullis.core.context import Context, Principal
from portcullis.core.db import engine_for, session_factory, transaction
from portcullis.core.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    _signer: Any = None
    # The key service's master key and service (keys/service.py builds them on first use).
    _keyring: Any = None
    _keys: Any = None
    _hsm: Any = None
    _unseal: Any = None  # shares offered towards unsealing the master key (keys/unseal.py)

    @property
    def signer(self) -> Any:
        """The ledger checkpoint signer: key management's, or the key file's (created on first use)."""
        if self._signer is None:
            from portcullis.ledger.signing import signer_for

            self._signer = signer_for(self)
        return self._signer

    @property
    def autosign(self) -> Any:
        from portcullis.ledger.checkpoints import Autosign

        return Autosign(self.signer, self.settings.checkpoint_every)

    @classmethod
    def build(cls, settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
        settings = settings or get_settings()
        engine = engine_for(settings)
        return cls(settings, engine, session_factory(engine), clock or SystemClock())

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.factory) as s:
            yield s

    @contextmanager
    def work(self, principal: Principal) -> Iterator[Context]:
        """One unit of work as `principal`: the change and its audit record commit together."""
        with transaction(self.factory) as s:
            yield Context(s, principal, self.clock, self.autosign)
