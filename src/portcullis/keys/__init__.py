"""Cryptographic keys (§17 vi, §26-28): the key register, the key service and its backends."""
