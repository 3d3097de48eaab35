"""The key service of a running Portcullis: its keyring (master key) and backends, built once per process."""

from __future__ import annotations

from portcullis.core.runtime import Runtime
from portcullis.keys.backends.base import Backend
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.keyring import Keyring, load_or_create_file
from portcullis.keys.use import KeyService


def keyring(rt: Runtime) -> Keyring:
    """The process's keyring; with the "file" source it unseals itself from the master key file."""
    if rt._keyring is None:
        ring = Keyring()
        if rt.settings.master_key_source == "file":
            master = load_or_create_file(rt.settings.effective_master_key_file)
            with rt.session() as s:
                ring.unseal(s, master, "file")
        rt._keyring = ring
    ring_: Keyring = rt._keyring
    return ring_


def backends(rt: Runtime) -> dict[str, Backend]:
    """The backends this process can use: software once the keyring is unsealed, PKCS#11 when configured."""
    found: dict[str, Backend] = {"software": SoftwareBackend(keyring(rt).master)}
    hsm = pkcs11_backend(rt)
    if hsm is not None:
        found["pkcs11"] = hsm
    return found


def pkcs11_backend(rt: Runtime) -> Backend | None:
    """The configured token's backend, logged in once per process (PKCS#11 logins are per process)."""
    settings = rt.settings
    if not settings.pkcs11_token:
        return None
    if rt._hsm is None:
        from portcullis.keys.backends.pkcs11 import Pkcs11Backend

        rt._hsm = Pkcs11Backend(
            token_label=settings.pkcs11_token,
            user_pin=settings.pkcs11_pin.get_secret_value(),
            module=str(settings.pkcs11_module),
        )
    hsm: Backend = rt._hsm
    return hsm


def key_service(rt: Runtime) -> KeyService:
    if rt._keys is None:
        rt._keys = KeyService(backends(rt))
    service: KeyService = rt._keys
    return service
