"""Access governance services — CONTRACT (other modules are written against these names).

Every writer takes a Context, checks permission (Permission.ACCESS_ADMIN for the
catalogue, ACCESS_REQUEST to ask, ACCESS_APPROVE to decide, ACCESS_READ to read),
validates, writes and calls ledger.service.record_change in the same transaction.
"The acting person" is the Person linked to the platform user (User.person_id);
`acting_person(ctx)` returns it or raises PermissionDenied naming the missing link.

Split across modules as it grows (catalogue.py, requests.py, grants.py, policy.py,
findings.py, training.py); this module re-exports the public names.
"""

from __future__ import annotations
