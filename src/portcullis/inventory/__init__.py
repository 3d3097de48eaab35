"""People, ICT assets, premises and providers (§11, §17 i, §18, §21)."""

# Registers the audit stream's retention with the ledger.
from portcullis.inventory import retention as _retention  # noqa: F401
