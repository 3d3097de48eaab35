"""Portcullis: systems and security access protocols under MiCA Art. 14(1)(d)."""

__version__ = "0.1.0"
