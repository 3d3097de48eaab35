"""Every domain's tables, imported so that metadata (and Alembic) sees them all."""

from portcullis.access import models as access_models
from portcullis.accounts import models as accounts_models
from portcullis.certs import models as certs_models
from portcullis.core.db import Base
from portcullis.events import models as events_models
from portcullis.inventory import models as inventory_models
from portcullis.keys import backup as keys_backup_model
from portcullis.keys import keyring as keyring_model
from portcullis.keys import models as keys_models
from portcullis.ledger import models as ledger_models

metadata = Base.metadata

__all__ = [
    "access_models",
    "accounts_models",
    "certs_models",
    "events_models",
    "inventory_models",
    "keyring_model",
    "keys_backup_model",
    "keys_models",
    "ledger_models",
    "metadata",
]
