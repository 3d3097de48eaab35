"""The certificate domain's scheduler jobs (§30: renewal and notices without anyone having to remember)."""

from __future__ import annotations

from typing import Any

from portcullis.certs import ca, checks, notices, renewal
from portcullis.core.context import Context
from portcullis.core.runtime import Runtime


def plan(ctx: Context, rt: Runtime) -> dict[str, Any]:
    """Findings, renewals due, notices due and CRLs near their next update, in the scheduler's unit of work."""
    from portcullis.keys.keyring import Sealed
    from portcullis.keys.service import key_service

    # The key service first: on a fresh installation unsealing records the master key's check value in a
    # transaction of its own, which on SQLite must not wait behind this job's writes.
    try:
        keys = key_service(rt)
    except Sealed:
        keys = None
    result: dict[str, Any] = {
        "pass": checks.certificate_pass(ctx),
        "renewals_planned": renewal.plan_renewals(ctx),
        "notices_planned": notices.plan_notices(ctx, notices.channels(rt.settings)),
    }
    # A sealed key service signs nothing; the CRL is re-signed on the first tick after unsealing.
    result["crls"] = ca.crl_refresh_due(ctx, keys) if keys is not None else "key service sealed"
    return result


def ari(ctx: Context, rt: Runtime) -> dict[str, int]:
    return renewal.refresh_ari(rt)


def renew(ctx: Context, rt: Runtime) -> list[dict[str, Any]]:
    return renewal.run_renewals(rt)


def deliver(ctx: Context, rt: Runtime) -> dict[str, int]:
    return notices.deliver_notices(rt, notices.channels(rt.settings))
