"""Access events (§18, §22, §23): sources, parsers, ingestion, search."""

# Registers the retention resolver for the sources' ledger streams.
from portcullis.events import retention as _retention  # noqa: F401
