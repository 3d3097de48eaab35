"""Fresh SoftHSM2 tokens for tests: one token directory per test session, one token per test module.

SoftHSM reads its configuration (SOFTHSM2_CONF) at C_Initialize, and python-pkcs11
initialises a library once per process, so the process gets one token directory:
the first use writes `softhsm2.conf` in a pytest temporary directory and sets
SOFTHSM2_CONF to it for the rest of the process (before or, if something loaded
the library already, followed by a re-initialisation). Tokens are created with
`softhsm2-util --init-token --free`, each in its own slot of that directory.

A token created after C_Initialize is invisible until the library is initialised
again, so `new_token` re-initialises it (C_Finalize + C_Initialize). That drops
every open session in the process; Pkcs11Backend notices and opens its session
again on its next call, so backends of other modules keep working.

Use in a test module:

    token = softhsm_token()          # module-scoped fixture: a SoftHsmToken

    def test_x(token: SoftHsmToken) -> None:
        with token.backend() as backend: ...
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
import pytest

from portcullis.keys.backends.pkcs11 import DEFAULT_MODULE, Pkcs11Backend
from tests.conftest import need

MODULE = os.environ.get("PORTCULLIS_TEST_PKCS11_MODULE", DEFAULT_MODULE)
UTIL = "softhsm2-util"
_LABEL_MAX = 32  # CK_TOKEN_INFO.label is 32 bytes


@dataclass(frozen=True)
class SoftHsmToken:
    module: str
    label: str
    user_pin: str = field(repr=False)
    so_pin: str = field(repr=False)

    def backend(self) -> Pkcs11Backend:
        return Pkcs11Backend(token_label=self.label, user_pin=self.user_pin, module=self.module)

    def session(self) -> pkcs11.Session:
        """A raw read-write session, for tests that look at or plant objects behind the backend's back.

        Not logged in by itself: the login belongs to the process, so open a backend on the token first.
        """
        session: pkcs11.Session = pkcs11.lib(self.module).get_token(token_label=self.label).open(rw=True)
        return session


class SoftHsm:
    """The token directory of this test process."""

    def __init__(self, root: Path, module: str) -> None:
        self.module = module
        self.conf = root / "softhsm2.conf"
        tokens = root / "tokens"
        tokens.mkdir()
        self.conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(self.conf)
        self._count = itertools.count(1)

    def new_token(self, name: str) -> SoftHsmToken:
        label = f"{name[: _LABEL_MAX - 5]}-{next(self._count):04d}"
        token = SoftHsmToken(self.module, label, secrets.token_hex(8), secrets.token_hex(8))
        result = subprocess.run(
            [UTIL, "--init-token", "--free", "--label", label, "--pin", token.user_pin, "--so-pin", token.so_pin],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"softhsm2-util could not create token {label}: {result.stderr.strip()}")
        # Re-initialise so this process sees the new token (and reads SOFTHSM2_CONF, should it have changed).
        pkcs11.lib(self.module).reinitialize()
        return token


_softhsm: SoftHsm | None = None


def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    """The token directory of this process, made at first use; need() when SoftHSM2 is not installed."""
    global _softhsm
    if shutil.which(UTIL) is None:
        need(f"SoftHSM2 is not installed: {UTIL} not found (Debian: apt install softhsm2)")
    if not Path(MODULE).exists():
        need(f"SoftHSM2 is not installed: no PKCS#11 module at {MODULE}")
    if _softhsm is None:
        _softhsm = SoftHsm(tmp_path_factory.mktemp("softhsm"), MODULE)
    return _softhsm


def softhsm_token(scope: Any = "module") -> Any:
    """A fixture giving a fresh token, labelled after the test module, once per `scope`."""

    @pytest.fixture(scope=scope)
    def token(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
        return softhsm(tmp_path_factory).new_token(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))

    return token
