"""What access events say about grants: when each was last used, and use with no grant behind it.

Least privilege and access reviews (§19, §21, §22) need to know whether a grant
is used; §25 needs every real access to rest on an approved grant. A successful
login, session, privileged action or entry by a known person on an asset or zone
is a *use*. It is matched against the person's grants for that asset or zone that
were valid at the event's time (a privileged action needs a privileged
entitlement): each matching grant's last_used_at moves forward; a use with no
valid grant opens a finding, once per person and target until it is resolved.
A successful access by an account nobody is known to hold is a finding too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portcullis.access.findings import HIGH, MEDIUM, FindingSpec, open_many
from portcullis.access.grants import security_officer
from portcullis.access.models import Entitlement, Finding, FindingStatus, Grant
from portcullis.core.context import Context
from portcullis.events.parsers.base import Category
from portcullis.inventory.models import Asset, Zone

# (category, action) pairs that are a use of access when they succeed.
USE = {
    (Category.AUTHENTICATION, "login"),
    (Category.SESSION, "open"),
    (Category.PHYSICAL_ENTRY, "entry"),
}
USE_FINDING = "use_without_grant"
UNATTRIBUTED_FINDING = "unattributed_access"


def is_use(category: Category, action: str) -> bool:
    return category is Category.PRIVILEGED_ACTION or (category, action) in USE


@dataclass
class Usage:
    """Uses seen in one batch, applied in a few queries at its end."""

    # (person_id, "asset"|"zone", target_id, privileged) -> times
    uses: dict[tuple[int, str, int, bool], list[datetime]] = field(default_factory=lambda: defaultdict(list))
    # (asset_id or None, zone_id or None, actor) -> first time seen
    unattributed: dict[tuple[int | None, int | None, str], datetime] = field(default_factory=dict)

    def add(self, person_id: int, asset_id: int | None, zone_id: int | None, privileged: bool, at: datetime) -> None:
        if asset_id is not None:
            self.uses[(person_id, "asset", asset_id, privileged)].append(at)
        elif zone_id is not None:
            self.uses[(person_id, "zone", zone_id, privileged)].append(at)

    def add_unattributed(self, asset_id: int | None, zone_id: int | None, actor: str, at: datetime) -> None:
        self.unattributed.setdefault((asset_id, zone_id, actor), at)

    def apply(self, ctx: Context, source_key: str) -> int:
        """Move last_used_at and open findings; returns the number of findings opened."""
        if not self.uses and not self.unattributed:
            return 0
        s = ctx.session
        last_used, uncovered = self._match(s)
        for grant_id, at in last_used.items():
            s.execute(
                update(Grant)
                .where(Grant.id == grant_id, (Grant.last_used_at.is_(None)) | (Grant.last_used_at < at))
                .values(last_used_at=at)
                .execution_options(synchronize_session=False)
            )
        specs = self._specs(s, uncovered, source_key)
        if not specs:
            return 0
        keys = [sp.key for sp in specs]
        already = set(
            s.scalars(select(Finding.key).where(Finding.key.in_(keys), Finding.status == FindingStatus.OPEN.value))
        )
        return open_many(ctx, specs, already)

    def _match(self, s: Session) -> tuple[dict[int, datetime], dict[tuple[int, str, int, bool], list[datetime]]]:
        people = sorted({k[0] for k in self.uses})
        grants: dict[tuple[int, str, int], list[tuple[int, bool, datetime, datetime | None]]] = defaultdict(list)
        if people:
            rows = s.execute(
                select(
                    Grant.id,
                    Grant.person_id,
                    Entitlement.asset_id,
                    Entitlement.zone_id,
                    Entitlement.privileged,
                    Grant.starts_at,
                    Grant.expires_at,
                    Grant.ended_at,
                )
                .join(Entitlement, Entitlement.id == Grant.entitlement_id)
                .where(Grant.person_id.in_(people))
            )
            for gid, pid, asset_id, zone_id, privileged, starts, expires, ended in rows:
                until = min((t for t in (expires, ended) if t is not None), default=None)
                held = (pid, "asset", asset_id) if asset_id is not None else (pid, "zone", zone_id or 0)
                grants[held].append((gid, privileged, starts, until))
        last_used: dict[int, datetime] = {}
        uncovered: dict[tuple[int, str, int, bool], list[datetime]] = {}
        for key, times in self.uses.items():
            pid, kind, target_id, privileged = key
            candidates = [g for g in grants.get((pid, kind, target_id), []) if g[1] or not privileged]
            for at in times:
                hit = [g[0] for g in candidates if g[2] <= at and (g[3] is None or at < g[3])]
                if not hit:
                    uncovered.setdefault(key, []).append(at)
                for gid in hit:
                    if gid not in last_used or last_used[gid] < at:
                        last_used[gid] = at
        return last_used, uncovered

    def _specs(
        self, s: Session, uncovered: dict[tuple[int, str, int, bool], list[datetime]], source_key: str
    ) -> list[FindingSpec]:
        assets = {a.id: a for a in s.scalars(select(Asset).where(Asset.id.in_(_ids(uncovered, self, "asset"))))}
        zones = {z.id: z for z in s.scalars(select(Zone).where(Zone.id.in_(_ids(uncovered, self, "zone"))))}
        fallback = security_officer(s)
        specs: list[FindingSpec] = []
        for (pid, kind, target_id, privileged), times in sorted(uncovered.items()):
            target: Asset | Zone | None = assets.get(target_id) if kind == "asset" else zones.get(target_id)
            name = f"{kind} {target.external_id}" if target else f"{kind} {target_id}"
            what = "privileged action" if privileged else ("entry" if kind == "zone" else "access")
            critical = target is not None and target.criticality == "critical"
            specs.append(
                FindingSpec(
                    key=f"{USE_FINDING}:person:{pid}:{kind}:{target_id}" + (":privileged" if privileged else ""),
                    kind=USE_FINDING,
                    severity=HIGH if privileged or critical else MEDIUM,
                    detail=(
                        f"{what} on {name} at {min(times).isoformat()} with no valid grant"
                        f" ({len(times)} such event(s) in this batch from source {source_key})"
                    ),
                    person_id=pid,
                    owner_id=(target.owner_id if target is not None else None) or fallback,
                )
            )
        for (asset_id, zone_id, actor), at in sorted(self.unattributed.items(), key=lambda kv: str(kv[0])):
            target = assets.get(asset_id) if asset_id is not None else zones.get(zone_id or -1)
            where = f"asset:{asset_id}" if asset_id is not None else f"zone:{zone_id}"
            specs.append(
                FindingSpec(
                    key=f"{UNATTRIBUTED_FINDING}:{where}:actor:{actor}",
                    kind=UNATTRIBUTED_FINDING,
                    severity=HIGH,
                    detail=(
                        f"successful access as {actor!r} at {at.isoformat()} (source {source_key}):"
                        " no person is known to hold this account"
                    ),
                    owner_id=(target.owner_id if target is not None else None) or fallback,
                )
            )
        return specs


def _ids(uncovered: dict[tuple[int, str, int, bool], list[datetime]], usage: Usage, kind: str) -> set[int]:
    ids = {k[2] for k in uncovered if k[1] == kind}
    for asset_id, zone_id, _ in usage.unattributed:
        if kind == "asset" and asset_id is not None:
            ids.add(asset_id)
        if kind == "zone" and zone_id is not None:
            ids.add(zone_id)
    return ids
