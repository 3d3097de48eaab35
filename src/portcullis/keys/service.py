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
    """The backends this process can use; the software one only once the keyring is unsealed."""
    return {"software": SoftwareBackend(keyring(rt).master)}


def key_service(rt: Runtime) -> KeyService:
    if rt._keys is None:
        rt._keys = KeyService(backends(rt))
    service: KeyService = rt._keys
    return service
