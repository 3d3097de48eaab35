"""Cryptographic keys (§17 vi, §26-28): the key register, the key service and its backends."""

# Registers the key register as the ledger's first source of its checkpoint-signing key.
from portcullis.keys import ledger_key as _ledger_key  # noqa: F401
