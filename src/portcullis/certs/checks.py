"""The certificate pass (§29, §30): what is wrong with the register today, as findings.

Run by the scheduler and after every scan. It looks at every certificate still
relied on (unregistered or active) and opens, once, a finding for each of:
- cert_unregistered: discovery found it and nobody registered it;
- cert_expired: it has expired while still deployed;
- cert_renewal_due: a manually renewed certificate has reached its renewal date;
- cert_device_missing: it protects a critical asset and a place it is deployed
  in has no registered device (§29 asks for the devices too);
- cert_chain_<problem>: its chain has a problem (expired intermediate, weak key,
  SHA-1, a name the certificate does not cover, a path the verifier refuses);
and closes the findings of these kinds it no longer sees.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from sqlalchemy import select

from portcullis.access.findings import FindingSpec, open_keys, open_many, resolve_missing
from portcullis.certs import chain as chain_checks
from portcullis.certs import policy
from portcullis.certs.models import CertAsset, CertDeployment, Certificate, CertStatus, RenewalMethod
from portcullis.certs.register import UNREGISTERED, chain_of, endpoint_names, short_name
from portcullis.core.context import Context
from portcullis.inventory.models import Asset
from portcullis.inventory.proportionality import default_value

PREFIX = "cert_"
# Kinds the pass owns; cert_renewal_failed belongs to renewal.py and is closed by a successful renewal.
PASS_KINDS = ("cert_unregistered", "cert_expired", "cert_renewal_due", "cert_device_missing", "cert_chain_")


@dataclass
class Facts:
    """What the pass needs about the register, loaded in a few queries."""

    criticalities: dict[int, set[str]]
    deployments: dict[int, list[CertDeployment]]
    percents: dict[str, int]
    roots: list[x509.Certificate]


def _facts(ctx: Context) -> Facts:
    s = ctx.session
    facts = renewal_facts(ctx)
    deps: dict[int, list[CertDeployment]] = defaultdict(list)
    for d in s.scalars(select(CertDeployment).where(CertDeployment.current.is_(True))):
        deps[d.cert_id].append(d)
    # Trust anchors: the system's roots and the self-signed CA certificates the firm registered (its internal CA).
    own_roots = s.scalars(
        select(Certificate.der).where(
            Certificate.is_ca.is_(True),
            Certificate.self_signed.is_(True),
            Certificate.status == CertStatus.ACTIVE.value,
        )
    )
    roots = [*chain_checks.system_roots(), *(x509.load_der_x509_certificate(d) for d in own_roots)]
    return Facts(facts.criticalities, deps, facts.percents, roots)


def renewal_due_at(c: Certificate, facts: Facts) -> datetime:
    fraction = policy.fraction_for(c.renew_at_fraction, facts.criticalities.get(c.id, set()), facts.percents)
    return policy.renew_at(c.not_before, c.not_after, fraction)


def _host_of(location: str) -> str:
    """The name a client uses for an endpoint deployment "host:port[/sni]": the SNI if given, else the host."""
    host, sni = endpoint_names(location)
    return sni or host


def _chain_specs(c: Certificate, ctx: Context, facts: Facts, now: datetime) -> list[FindingSpec]:
    chain = [x509.load_der_x509_certificate(row.der) for row in chain_of(ctx, c)]
    hosts: list[str | None] = [
        *sorted({_host_of(d.location) for d in facts.deployments.get(c.id, []) if d.kind == "endpoint"})
    ]
    problems: dict[str, Any] = {}
    for host in hosts or [None]:  # files and tokens: no name to check, the rest still applies
        for p in chain_checks.check_chain(chain, hostname=host, roots=facts.roots, now=now):
            problems.setdefault(p.code, p)
    return [
        FindingSpec(
            key=f"cert_chain_{code}:cert:{c.id}",
            kind=f"cert_chain_{code}",
            severity=p.severity,
            detail=f"Certificate {short_name(c)}: {p.detail}",
            owner_id=c.owner_id,
        )
        for code, p in sorted(problems.items())
    ]


def specs_for(ctx: Context, c: Certificate, facts: Facts, now: datetime) -> list[FindingSpec]:
    name = short_name(c)
    out: list[FindingSpec] = []
    deployed = bool(facts.deployments.get(c.id))
    if c.status == CertStatus.UNREGISTERED.value:
        # Only what was found in a place of its own: an issuer seen inside a server's chain is the CA's, not the firm's.
        if deployed:
            out.append(
                FindingSpec(
                    f"{UNREGISTERED}:cert:{c.id}",
                    UNREGISTERED,
                    "medium",
                    f"Certificate {name} was found by discovery and is not in the register (§29)",
                )
            )
        if not deployed:
            return out
    if now >= c.not_after and deployed:
        out.append(
            FindingSpec(
                f"cert_expired:cert:{c.id}",
                "cert_expired",
                "high",
                f"Certificate {name} expired on {c.not_after:%Y-%m-%d} and is still deployed",
                owner_id=c.owner_id,
                due_days=1,
            )
        )
    elif c.status == CertStatus.ACTIVE.value and c.renewal_method == RenewalMethod.MANUAL.value:
        due = renewal_due_at(c, facts)
        if now >= due:
            out.append(
                FindingSpec(
                    f"cert_renewal_due:cert:{c.id}",
                    "cert_renewal_due",
                    "high" if policy.days_left(c.not_after, now) < policy.LEAF_NOTICE_DAYS[-1] else "medium",
                    f"Certificate {name} is renewed by hand and its renewal was due on {due:%Y-%m-%d}; "
                    f"it expires on {c.not_after:%Y-%m-%d}",
                    owner_id=c.owner_id,
                    due_days=max(1, policy.days_left(c.not_after, now)),
                )
            )
    if "critical" in facts.criticalities.get(c.id, set()):
        bare = [d.location for d in facts.deployments.get(c.id, []) if d.device_id is None]
        if bare or not deployed:
            where = ", ".join(sorted(bare)[:5]) if bare else "nowhere known"
            out.append(
                FindingSpec(
                    f"cert_device_missing:cert:{c.id}",
                    "cert_device_missing",
                    "high",
                    f"Certificate {name} protects a critical ICT asset and the device storing it is not in the "
                    f"device register (deployed at {where})",
                    owner_id=c.owner_id,
                )
            )
    if deployed and not c.is_ca:
        out.extend(_chain_specs(c, ctx, facts, now))
    return out


def certificate_pass(ctx: Context) -> dict[str, int]:
    """Open what is wrong, close what was put right; returns counts."""
    now = ctx.now()
    facts = _facts(ctx)
    live = (CertStatus.UNREGISTERED.value, CertStatus.ACTIVE.value)
    certs = list(ctx.session.scalars(select(Certificate).where(Certificate.status.in_(live)).order_by(Certificate.id)))
    specs = [spec for c in certs for spec in specs_for(ctx, c, facts, now)]
    already = set(open_keys(ctx.session, PASS_KINDS))
    opened = open_many(ctx, specs, already)
    still = {s.key for s in specs}
    closed = sum(resolve_missing(ctx, kind, still) for kind in PASS_KINDS)
    return {"certificates": len(certs), "findings": len(still), "opened": opened, "closed": closed}


def expiring(ctx: Context, days: int) -> list[tuple[Certificate, datetime]]:
    """Certificates in use that expire within `days`, soonest first, with the date their renewal is due."""
    now = ctx.now()
    facts = renewal_facts(ctx)
    stmt = (
        select(Certificate)
        .where(
            Certificate.status.in_((CertStatus.ACTIVE.value, CertStatus.UNREGISTERED.value)),
            Certificate.not_after <= now + timedelta(days=days),
        )
        .order_by(Certificate.not_after, Certificate.id)
    )
    return [(c, renewal_due_at(c, facts)) for c in ctx.session.scalars(stmt)]


def renewal_facts(ctx: Context) -> Facts:
    """What renewal dates need: the assets' criticalities and the percentages in force (no deployments, no roots)."""
    s = ctx.session
    crit: dict[int, set[str]] = defaultdict(set)
    for cert_id, level in s.execute(select(CertAsset.cert_id, Asset.criticality).join(Asset)):
        crit[cert_id].add(level)
    percents = {lvl: default_value(s, f"cert_renew_percent.{lvl}") for lvl in policy.CRITICALITY_ORDER}
    return Facts(crit, {}, percents, [])
