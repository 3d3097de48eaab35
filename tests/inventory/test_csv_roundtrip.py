"""Property: whatever valid people the register holds, its export imports back unchanged."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from portcullis.core.runtime import Runtime
from portcullis.inventory import service
from portcullis.inventory.models import PersonKind, PersonStatus
from portcullis.inventory.schemas import PersonIn
from tests.inventory.test_csv_import import OFFICER, counts, do_import, export

_batch = itertools.count()
# Characters that trouble CSV files and spreadsheets, mixed into ordinary text.
_AWKWARD = st.sampled_from(["=", "+", "-", "@", "'", "\t", "\r", "\n", ",", '"', ";", " ", "\u00a0", "\x1c"])
_PREFIX = st.sampled_from(["", "", "=", "-", "+", "@", "'", "'=", "''-", "\x1c", "\u00a0"])
_TEXT = st.builds(
    lambda a, b, c: a + b + c,
    _PREFIX,
    st.text(alphabet=st.one_of(st.characters(blacklist_categories=("Cs", "Cc")), _AWKWARD), max_size=30),
    _PREFIX,
)
_IDENT = st.text(alphabet=st.sampled_from("ABCXYZ0123456789-_=+@'"), min_size=1, max_size=12)


def _unique(ident: str | None, suffix: str) -> str | None:
    return None if ident is None else ident + suffix


@st.composite
def people(draw: st.DrawFn) -> list[PersonIn]:
    batch = next(_batch)
    out: list[PersonIn] = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        start = draw(st.none() | st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)))
        status = draw(st.sampled_from(list(PersonStatus)))
        end = None
        if status == PersonStatus.LEAVER or draw(st.booleans()):
            end = (start or date(2026, 1, 1)) + timedelta(days=draw(st.integers(0, 2000)))
        local = draw(st.from_regex(r"[a-z0-9+\-_.]{1,12}", fullmatch=True))
        try:
            person = PersonIn(
                external_id=draw(st.sampled_from(["", "=", "-", "'"])) + f"HR-{batch}-{i}",
                email=f"{local}.{batch}.{i}@kestrel.example.eu",
                full_name=draw(_TEXT),
                kind=draw(st.sampled_from(list(PersonKind))),
                department=draw(_TEXT),
                job_title=draw(_TEXT),
                status=status,
                start_date=start,
                end_date=end,
                key_function_holder=draw(st.booleans()),
                idp_id=_unique(draw(st.none() | _IDENT), f"{batch}.{i}"),
                badge_id=_unique(draw(st.none() | _IDENT), f"/{batch}.{i}"),
            )
        except ValidationError:
            assume(False)
            raise
        out.append(person)
    return out


def test_any_export_of_valid_people_round_trips_unchanged(rt: Runtime) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batch=people(), managers=st.lists(st.integers(min_value=0, max_value=5), min_size=6, max_size=6))
    def check(batch: list[PersonIn], managers: list[int]) -> None:
        with rt.work(OFFICER) as ctx:
            created = [service.create_person(ctx, p) for p in batch]
            # Reporting lines only upwards in the batch, so they cannot loop.
            for n, person in enumerate(created[1:], start=1):
                boss = created[managers[n] % n]
                service.update_person(ctx, person.id, batch[n].model_copy(update={"manager_id": boss.id}))
        text = export(rt, "people")
        for row in csv.reader(io.StringIO(text, newline="")):
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
        before = counts(rt)
        report = do_import(rt, "people", text.encode("utf-8"))
        assert report.ok, report.as_dict()
        assert (report.created, report.updated) == (0, 0), report.as_dict()
        assert report.unchanged == report.rows == before["person"]
        assert counts(rt) == before

    check()
