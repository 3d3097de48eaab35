"""Every domain's tables, imported so that metadata (and Alembic) sees them all."""

from portcullis.access import models as access_models
from portcullis.accounts import models as accounts_models
from portcullis.core.db import Base
from portcullis.events import models as events_models
from portcullis.inventory import models as inventory_models
from portcullis.ledger import models as ledger_models

metadata = Base.metadata

__all__ = [
    "access_models",
    "accounts_models",
    "events_models",
    "inventory_models",
    "ledger_models",
    "metadata",
]
