"""CSV import of the registers: good files commit, repeats change nothing, export round-trips."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portcullis.core.context import Principal
from portcullis.core.errors import PermissionDenied, ValidationFailed
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory.csvio import KINDS, ImportReport, columns, export_csv, required_columns, run_import
from portcullis.inventory.models import Asset, AssetDependency, Person, Provider, Site, Zone
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode

DATA = Path(__file__).parent / "data"
OFFICER = Principal(name="officer@kestrel.example.eu", role=Role.SECURITY_OFFICER, user_id=None, via="cli", mfa=True)
ORDER = ("people", "providers", "zones", "assets")  # each may refer to the ones before it
_TABLES = (Person, Site, Zone, Provider, Asset, AssetDependency, LedgerRecord)


def counts(rt: Runtime) -> dict[str, int]:
    with rt.session() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0 for t in _TABLES}


def ledger_actions(rt: Runtime) -> list[str]:
    with rt.session() as s:
        return list(s.scalars(select(LedgerRecord.action).order_by(LedgerRecord.id)))


def do_import(
    rt: Runtime, kind: str, data: bytes, dry_run: bool = False, principal: Principal = OFFICER
) -> ImportReport:
    with rt.work(principal) as ctx:
        return run_import(ctx, kind, data, dry_run=dry_run)


def export(rt: Runtime, kind: str, principal: Principal = OFFICER) -> str:
    with rt.work(principal) as ctx:
        return export_csv(ctx, kind)


def seed(rt: Runtime, *kinds: str) -> None:
    for kind in kinds:
        report = do_import(rt, kind, (DATA / f"{kind}.csv").read_bytes())
        assert report.committed, report.as_dict()


def csv_bytes(*lines: str, newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode("utf-8")


def test_columns_and_required_columns_are_published() -> None:
    assert KINDS == ("people", "assets", "zones", "providers")
    assert required_columns("people") == ["external_id", "email", "full_name"]
    assert required_columns("zones") == ["external_id", "name", "site_external_id", "criticality"]
    assert "depends_on" in columns("assets")
    with pytest.raises(ValidationFailed):
        columns("keys")


def test_good_files_commit_every_row_with_references(rt: Runtime) -> None:
    for kind, rows in zip(ORDER, (9, 4, 4, 6), strict=True):
        report = do_import(rt, kind, (DATA / f"{kind}.csv").read_bytes())
        assert (report.ok, report.committed, report.rows, report.created) == (True, True, rows, rows), kind
    with rt.session() as s:
        people = {p.external_id: p for p in s.scalars(select(Person))}
        by_id = {p.id: p for p in people.values()}
        # The CEO is the last row, yet her reports above it point at her.
        ceo = people["HR-0001"]
        assert by_id[people["HR-0002"].manager_id or 0].external_id == "HR-0001"
        assert ceo.manager_id is None
        assert ceo.key_function_holder is True
        assert people["HR-0015"].full_name == "Dubois, Pierre"
        assert people["HR-0015"].kind == "contractor"
        assert people["HR-0015"].badge_id is None
        assert str(people["HR-0021"].end_date) == "2026-10-31"
        assert people["HR-0012"].key_function_holder is True
        assert people["HR-0009"].key_function_holder is False

        sites = {x.external_id: x for x in s.scalars(select(Site))}
        assert sorted(sites) == ["S-FRA-COLO", "S-VIE-HQ"]
        assert (sites["S-FRA-COLO"].name, sites["S-FRA-COLO"].kind) == ("Frankfurt colocation FRA2", "colocation")
        zones = {z.external_id: z for z in s.scalars(select(Zone))}
        assert zones["Z-VIE-COMMS"].site_id == sites["S-VIE-HQ"].id

        assets = {a.external_id: a for a in s.scalars(select(Asset))}
        key_of = {a.id: k for k, a in assets.items()}
        deps = {(key_of[d.asset_id], key_of[d.depends_on_id]) for d in s.scalars(select(AssetDependency))}
        # A-MATCH names A-PGDB and A-KAFKA, which come later in the file.
        assert deps == {("A-MATCH", "A-PGDB"), ("A-MATCH", "A-KAFKA"), ("A-WALLET-HOT", "A-HSM-01")}
        assert assets["A-MATCH"].tags == ["trading", "core"]
        assert assets["A-HSM-01"].zone_id == zones["Z-FRA-CAGE"].id
        assert assets["A-LAPTOPS"].description == "=HYPERLINK is not a formula here"
        provider = s.scalars(select(Provider).where(Provider.external_id == "TP-VAULTLINE")).one()
        assert provider.lei == "894500HSMVAULTGMBH22"
        assert provider.contract_end is None


def test_committed_import_is_audited_once_per_change_plus_the_import(rt: Runtime) -> None:
    data = (DATA / "people.csv").read_bytes()
    do_import(rt, "people", data)
    actions = ledger_actions(rt)
    # Managers are written before their reports, so no person needs a second write.
    assert actions.count("person.created") == 9
    assert actions.count("person.updated") == 0
    assert actions[-1] == "inventory.imported"
    with rt.session() as s:
        rec = s.scalars(select(LedgerRecord).where(LedgerRecord.action == "inventory.imported")).one()
        payload = decode(rec)
    assert payload["sha256"] == hashlib.sha256(data).hexdigest()
    assert (payload["kind"], payload["rows"], payload["created"], payload["updated"]) == ("people", 9, 9, 0)


def test_same_file_twice_changes_nothing_the_second_time(rt: Runtime) -> None:
    seed(rt, *ORDER)
    before = counts(rt)
    for kind in ORDER:
        report = do_import(rt, kind, (DATA / f"{kind}.csv").read_bytes())
        assert (report.created, report.updated, report.unchanged) == (0, 0, report.rows), kind
        assert report.committed
    assert counts(rt) == before  # not even an inventory.imported record


def test_export_then_import_reports_every_row_unchanged(rt: Runtime) -> None:
    seed(rt, *ORDER)
    before = counts(rt)
    for kind in ORDER:
        text = export(rt, kind)
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == columns(kind)
        report = do_import(rt, kind, text.encode("utf-8"))
        assert (report.rows, report.created, report.updated, report.unchanged) == (
            len(rows) - 1,
            0,
            0,
            len(rows) - 1,
        ), kind
    assert counts(rt) == before


def test_export_guards_cells_a_spreadsheet_would_run(rt: Runtime) -> None:
    seed(rt, *ORDER)
    rows = list(csv.DictReader(io.StringIO(export(rt, "assets"), newline="")))
    laptops = next(r for r in rows if r["external_id"] == "A-LAPTOPS")
    assert laptops["description"] == "'=HYPERLINK is not a formula here"
    assert laptops["tags"] == "endpoint"
    assert laptops["depends_on"] == ""
    matching = next(r for r in rows if r["external_id"] == "A-MATCH")
    assert (matching["owner_email"], matching["provider_external_id"]) == ("tomas.kral@kestrel.example.eu", "TP-NIMBUS")
    assert matching["depends_on"] == "A-KAFKA;A-PGDB"
    people = list(csv.DictReader(io.StringIO(export(rt, "people"), newline="")))
    pierre = next(r for r in people if r["external_id"] == "HR-0015")
    assert (pierre["key_function_holder"], pierre["end_date"], pierre["badge_id"]) == ("false", "2026-12-31", "")


def test_guarded_cells_lose_exactly_one_apostrophe(rt: Runtime) -> None:
    seed(rt, "people")
    header = "external_id,email,full_name,department,job_title"
    report = do_import(
        rt,
        "people",
        csv_bytes(
            header,
            "HR-0100,ops@kestrel.example.eu,'-Ops desk,'=SUM(A1),'plain",
            "HR-0101,ops2@kestrel.example.eu,Ops desk 2,''@twice,@raw",
        ),
    )
    assert report.committed, report.as_dict()
    with rt.session() as s:
        got = {
            p.external_id: (p.full_name, p.department, p.job_title)
            for p in s.scalars(select(Person).where(Person.external_id.in_(["HR-0100", "HR-0101"])))
        }
    assert got == {"HR-0100": ("-Ops desk", "=SUM(A1)", "'plain"), "HR-0101": ("Ops desk 2", "'@twice", "@raw")}
    people = {r["external_id"]: r for r in csv.DictReader(io.StringIO(export(rt, "people"), newline=""))}
    assert (people["HR-0101"]["department"], people["HR-0101"]["job_title"]) == ("''@twice", "'@raw")
    assert do_import(rt, "people", export(rt, "people").encode()).updated == 0


def test_a_change_updates_only_that_row_and_is_audited(rt: Runtime) -> None:
    seed(rt, "people")
    text = (DATA / "people.csv").read_text(encoding="utf-8")
    changed = text.replace("Site Reliability Engineer", "Senior Site Reliability Engineer")
    report = do_import(rt, "people", changed.encode())
    assert (report.created, report.updated, report.unchanged) == (0, 1, 8)
    assert ledger_actions(rt)[-2:] == ["person.updated", "inventory.imported"]


def test_dry_run_reports_what_would_happen_and_writes_nothing(rt: Runtime) -> None:
    before = counts(rt)
    report = do_import(rt, "people", (DATA / "people.csv").read_bytes(), dry_run=True)
    assert (report.ok, report.committed, report.dry_run, report.created) == (True, False, True, 9)
    assert counts(rt) == before
    assert report.as_dict()["created"] == 9
    assert report.as_dict()["errors"] == []


def test_columns_left_out_keep_stored_values_and_header_is_lenient(rt: Runtime) -> None:
    seed(rt, "people")
    # Order, case and spaces of the header do not matter; BOM and CRLF are accepted.
    data = "\ufeff Full_Name ,EXTERNAL_ID,Email\r\nLena Fischer-Wolf,HR-0002,lena.fischer@kestrel.example.eu\r\n"
    report = do_import(rt, "people", data.encode("utf-8"))
    assert (report.rows, report.updated) == (1, 1), report.as_dict()
    with rt.session() as s:
        lena = s.scalars(select(Person).where(Person.external_id == "HR-0002")).one()
        assert (lena.full_name, lena.job_title, lena.badge_id) == (
            "Lena Fischer-Wolf",
            "Chief Information Security Officer",
            "B-10002",
        )
        assert lena.manager_id is not None


def test_zone_rows_create_a_site_once_and_update_an_existing_site(rt: Runtime) -> None:
    seed(rt, "people", "zones")
    header = "external_id,name,site_external_id,site_name,site_kind,kind,criticality"
    report = do_import(
        rt,
        "zones",
        csv_bytes(
            header,
            "Z-LIS-SRV,Lisbon server room,S-LIS-DR,Lisbon disaster recovery site,data_centre,server_room,critical",
            "Z-LIS-RCP,Lisbon reception,S-LIS-DR,,,reception,other",
            "Z-VIE-SAFE,Vienna key ceremony safe room,S-VIE-HQ,Vienna HQ (Praterstrasse),,safe_room,critical",
        ),
    )
    assert (report.created, report.updated) == (2, 1), report.as_dict()
    with rt.session() as s:
        sites = {x.external_id: (x.name, x.kind) for x in s.scalars(select(Site))}
    assert sites["S-LIS-DR"] == ("Lisbon disaster recovery site", "data_centre")
    assert sites["S-VIE-HQ"] == ("Vienna HQ (Praterstrasse)", "office")
    assert ledger_actions(rt).count("site.created") == 3  # two from the seed, one here


def test_import_needs_write_permission_even_for_a_dry_run(rt: Runtime) -> None:
    auditor = Principal(name="auditor@kestrel.example.eu", role=Role.AUDITOR, via="cli", mfa=True)
    data = (DATA / "people.csv").read_bytes()
    with pytest.raises(PermissionDenied):
        do_import(rt, "people", data, dry_run=True, principal=auditor)
    seed(rt, "people")
    assert export(rt, "people", principal=auditor).startswith("external_id,email,full_name")
    staff = Principal(name="staff@kestrel.example.eu", role=Role.STAFF, via="cli", mfa=True)
    with pytest.raises(PermissionDenied):
        export(rt, "people", principal=staff)


def test_unknown_register_is_refused(rt: Runtime) -> None:
    with pytest.raises(ValidationFailed) as exc:
        do_import(rt, "certificates", b"external_id\nX\n")
    assert exc.value.errors[0].field == "kind"


def test_reporting_lines_can_be_turned_around_in_one_file(rt: Runtime) -> None:
    """Writing Tomáš before Marta avoids a moment where each reports to the other."""
    seed(rt, "people")
    header = "external_id,email,full_name,manager_email"
    report = do_import(
        rt,
        "people",
        csv_bytes(
            header,
            "HR-0001,marta.novak@kestrel.example.eu,Marta Novák,tomas.kral@kestrel.example.eu",
            "HR-0003,tomas.kral@kestrel.example.eu,Tomáš Král,",
        ),
    )
    assert (report.committed, report.updated) == (True, 2), report.as_dict()
    with rt.session() as s:
        managers = {
            p.external_id: p.manager_id for p in s.scalars(select(Person).where(Person.external_id.like("HR-000%")))
        }
        ids = {p.id: p.external_id for p in s.scalars(select(Person))}
    assert ids[managers["HR-0001"] or 0] == "HR-0003"
    assert managers["HR-0003"] is None


def test_a_loop_through_stored_reporting_lines_is_refused(rt: Runtime) -> None:
    seed(rt, "people")
    before = counts(rt)
    # Lena already reports to Marta; Marta reporting to Lena would close the loop.
    data = csv_bytes(
        "external_id,email,full_name,manager_email",
        "HR-0001,marta.novak@kestrel.example.eu,Marta Novák,lena.fischer@kestrel.example.eu",
    )
    report = do_import(rt, "people", data)
    assert [(e.field, e.line) for e in report.errors] == [("manager_email", 2)]
    assert "HR-0001 -> HR-0002 -> HR-0001" in report.errors[0].message
    assert counts(rt) == before


def test_mutual_dependencies_between_new_assets_take_a_second_pass(rt: Runtime) -> None:
    seed(rt, "people", "providers", "zones")
    header = "external_id,name,type,criticality,owner_email,depends_on"
    report = do_import(
        rt,
        "assets",
        csv_bytes(
            header,
            "A-IDP,Identity provider,saas,critical,lena.fischer@kestrel.example.eu,A-VPN",
            "A-VPN,Admin VPN,network_device,critical,jonas.berg@kestrel.example.eu,A-IDP",
        ),
    )
    assert (report.committed, report.created, report.updated) == (True, 2, 0), report.as_dict()
    with rt.session() as s:
        key_of = {a.id: a.external_id for a in s.scalars(select(Asset))}
        deps = {(key_of[d.asset_id], key_of[d.depends_on_id]) for d in s.scalars(select(AssetDependency))}
    assert deps == {("A-IDP", "A-VPN"), ("A-VPN", "A-IDP")}
    again = do_import(rt, "assets", export(rt, "assets").encode())
    assert (again.updated, again.unchanged) == (0, 2)
