"""The scheduler: one pass over every recurring obligation, run by `portcullis tick`.

Each domain's due work is a function of (Context, Runtime) -> summary. Later
capabilities (reviews, training refreshers, certificate renewal) add theirs to
JOBS; the order is the order they run in, each in its own unit of work so that
one failing job neither blocks nor undoes the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from portcullis.access import grants, policy, requests
from portcullis.certs import jobs as cert_jobs
from portcullis.core.context import Context, Principal
from portcullis.core.errors import PortcullisError
from portcullis.core.runtime import Runtime
from portcullis.keys import rotation
from portcullis.ledger import operations, retention

Job = Callable[[Context, Runtime], Any]
log = logging.getLogger(__name__)


def _purge(ctx: Context, rt: Runtime) -> Any:
    return [r.as_dict() for r in retention.purge_all(ctx) if r.count]


def _checkpoint(ctx: Context, rt: Runtime) -> Any:
    # After the purge, so its record is covered by the checkpoint signed now.
    return operations.sign_checkpoints(ctx, rt.signer)


JOBS: list[tuple[str, Job]] = [
    ("ledger.purge", _purge),
    # Requests and grants end before the daily pass, so it checks only what is still in force;
    # all three before the checkpoint, so that it covers their records.
    ("access.expire_requests", lambda ctx, rt: requests.expire_requests(ctx)),
    ("access.expire_grants", lambda ctx, rt: grants.expire_grants(ctx)),
    ("access.daily_pass", lambda ctx, rt: policy.daily_pass(ctx)),
    ("keys.rotation_due", lambda ctx, rt: rotation.rotation_pass(ctx)),
    # Certificates: plan in the job's unit of work; renewals and notices then talk to the network outside
    # it, each outcome in a short transaction of its own (so the plan is committed before they start).
    ("certs.ari", cert_jobs.ari),
    ("certs.plan", cert_jobs.plan),
    ("certs.renew", cert_jobs.renew),
    ("certs.notify", cert_jobs.deliver),
    ("ledger.checkpoint", _checkpoint),
]


def run_once(rt: Runtime) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, job in JOBS:
        try:
            with rt.work(Principal.system("scheduler")) as ctx:
                results[name] = {"ok": True, "result": job(ctx, rt)}
        except PortcullisError as exc:
            results[name] = {"ok": False, "error": str(exc)}
        except Exception as exc:
            # A bug or an outage in one job (a database error, a library's surprise) must not stop the others:
            # checkpoints and purges still run. It is logged with its traceback and reported, never swallowed.
            log.exception("scheduler job %s failed", name)
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return results
