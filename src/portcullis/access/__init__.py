"""Access governance: entitlements, roles, requests and approvals, grants, findings (§19, §21, §22, §24, §25)."""

# Imported for its side effect: it registers the joiner/mover/leaver listener with
# the inventory, so that a leaver loses their access whichever interface changed them.
from portcullis.access import grants as grants
