"""How long the ledger keeps Portcullis's own audit trail (§23).

The audit stream records every change to access, keys and evidence, so it is
kept as long as the records of the firm's most critical assets.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from portcullis.inventory.proportionality import default_value
from portcullis.ledger.models import LedgerStream
from portcullis.ledger.retention import register_resolver
from portcullis.ledger.service import AUDIT


def audit_retention(session: Session, stream: LedgerStream) -> int | None:
    if stream.name != AUDIT:
        return None
    return default_value(session, "retention_days.critical")


register_resolver(audit_retention)
