"""The demo's access logs: the bastion's sshd and the office's badge readers, taken whole and put to use."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portcullis import demo_events
from portcullis.access.models import Entitlement, Finding, Grant
from portcullis.core.runtime import Runtime
from portcullis.demo import build_demo
from portcullis.events.models import AccessEvent, EventSource
from portcullis.events.usage import USE_FINDING
from portcullis.inventory.models import Person, Zone
from tests.conftest import need


def test_the_demo_takes_both_samples_and_uses_them(rt: Runtime) -> None:
    if not demo_events.available():
        need(f"the log samples at {demo_events.SAMPLES}")
    build_demo(rt)
    sample_lines = len(demo_events.OPENSSH.read_text(encoding="utf-8").splitlines())
    badge_lines = len(demo_events.BADGES.read_text(encoding="utf-8").splitlines())
    with rt.session() as s:
        by_key = {src.key: src for src in s.scalars(select(EventSource))}
        assert (by_key["bastion-sshd"].raw_total, by_key["bastion-sshd"].quarantined_total) == (sample_lines, 0)
        assert (by_key["office-badges"].raw_total, by_key["office-badges"].quarantined_total) == (badge_lines, 0)
        assert by_key["office-badges"].events_total == badge_lines - 1
        # The sample's one accepted login is the SRE's, on the bastion, yesterday: it marks the standing grant used.
        sre = s.scalar(select(Person.id).where(Person.external_id == "AUR-012"))
        [login] = s.scalars(
            select(AccessEvent).where(
                AccessEvent.actor == "fztu", AccessEvent.action == "login", AccessEvent.outcome == "success"
            )
        ).all()
        assert login.person_id == sre
        assert timedelta(0) < rt.clock.now() - login.time < timedelta(days=2)
        used = s.scalar(
            select(Grant.last_used_at)
            .join(Entitlement, Entitlement.id == Grant.entitlement_id)
            .where(Grant.person_id == sre, Entitlement.key == "bastion-ssh")
        )
        assert used is not None
        assert used >= login.time
        # Some badge holders walked into the server room without a grant.
        server_room = s.scalar(select(Zone.id).where(Zone.external_id == "ZONE-LUX-SERVER"))
        entered = {p for p in s.scalars(select(AccessEvent.person_id).where(AccessEvent.zone_id == server_room))}
        granted = set(
            s.scalars(
                select(Grant.person_id)
                .join(Entitlement, Entitlement.id == Grant.entitlement_id)
                .where(Entitlement.key == "server-room-entry")
            )
        )
        flagged = {
            f.person_id
            for f in s.scalars(select(Finding).where(Finding.kind == USE_FINDING))
            if f"zone:{server_room}" in f.key
        }
        assert flagged
        assert flagged <= entered
        # Whoever entered and never held the entitlement is flagged (others may be, for entries outside their grant).
        assert entered - granted <= flagged
