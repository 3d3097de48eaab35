"""Bad CSV files: each error names the line and the column, and the database stays as it was."""

from __future__ import annotations

import pytest

from portcullis.core.runtime import Runtime
from portcullis.inventory.csv_read import MAX_BYTES
from tests.inventory.test_csv_import import DATA, counts, csv_bytes, do_import, seed

PEOPLE = (
    "external_id,email,full_name,kind,department,job_title,manager_email,status,start_date,end_date,"
    "key_function_holder,idp_id,badge_id"
)
GOOD_PERSON = "HR-0100,ravi.patel@kestrel.example.eu,Ravi Patel,employee,Treasury,Treasury Analyst,,joiner,,,,,"
ASSETS = "external_id,name,type,criticality,owner_email,zone_external_id,provider_external_id,tags,depends_on"
GOOD_ASSET = "A-OTC,OTC desk blotter,saas,important,aisha.khan@kestrel.example.eu,,TP-TRACE,otc,"
ZONES = "external_id,name,site_external_id,site_name,site_kind,kind,criticality,owner_email"
# Müller in ISO 8859-1, as a spreadsheet on an old default code page saves it.
LATIN1_ROW = b"HR-0101,m\xfcller@kestrel.example.eu,M\xfcller" + b"," * 10
PROVIDERS = "external_id,name,lei,services,criticality,contract_start,contract_end"


def person(n: int, **cells: str) -> str:
    base = {
        "external_id": f"HR-{n:04d}",
        "email": f"new.hire{n}@kestrel.example.eu",
        "full_name": f"New Hire {n}",
        "kind": "employee",
        "department": "Operations",
        "job_title": "Client Operations Associate",
        "manager_email": "aisha.khan@kestrel.example.eu",
        "status": "joiner",
        "start_date": "2026-12-01",
        "end_date": "",
        "key_function_holder": "no",
        "idp_id": "",
        "badge_id": "",
    }
    base.update(cells)
    return ",".join(base[c] for c in PEOPLE.split(","))


# (kind, file content, [(column, line, words the message must hold)])
CASES = [
    pytest.param(
        "people",
        csv_bytes("external_id,full_name", "HR-0100,Ravi Patel"),
        [("email", 1, "required column 'email' is missing")],
        id="header-missing-required-column",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE + ",phone", GOOD_PERSON + ",+43 1 555"),
        [("phone", 1, "unknown column 'phone'; the people columns are: external_id*, email*, full_name*")],
        id="header-unknown-column",
    ),
    pytest.param(
        "people",
        csv_bytes("external_id,email,email,full_name", "HR-0100,a@kestrel.example.eu,b@kestrel.example.eu,A"),
        [("email", 1, "appears twice")],
        id="header-duplicate-column",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100), person(101, full_name="  ")),
        [("full_name", 3, "full_name is required")],
        id="missing-required-value",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, status="retired")),
        [("status", 2, "'retired' is not allowed; use one of: joiner, active, suspended, leaver")],
        id="invalid-enum",
    ),
    pytest.param(
        "assets",
        csv_bytes(ASSETS, GOOD_ASSET, "A-X,Signer,wallet,severe,lena.fischer@kestrel.example.eu,,,,"),
        [("criticality", 3, "use one of: critical, important, other")],
        id="invalid-enum-assets",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, start_date="01/12/2026")),
        [("start_date", 2, "YYYY-MM-DD")],
        id="bad-date",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, end_date="2026-02-30")),
        [("end_date", 2, "YYYY-MM-DD")],
        id="impossible-date",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, start_date="2026-12-01", end_date="2026-11-30")),
        [("end_date", 2, "end_date is before start_date")],
        id="end-before-start",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, key_function_holder="maybe")),
        [("key_function_holder", 2, "true/false, yes/no or 1/0")],
        id="bad-boolean",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, email="ravi.patel_at_kestrel")),
        [("email", 2, "pattern")],
        id="malformed-email",
    ),
    pytest.param(
        "providers",
        csv_bytes(PROVIDERS, "TP-ACME,Acme Custody SA,529900KESTRELCLOUD57,Custody,critical,,"),
        [("lei", 2, "check digits do not match")],
        id="invalid-lei-check-digits",
    ),
    pytest.param(
        "providers",
        csv_bytes(PROVIDERS, "TP-ACME,Acme Custody SA,ACME-LEI,Custody,critical,,"),
        [("lei", 2, "must be 20 characters")],
        id="invalid-lei-shape",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, manager_email="ghost@kestrel.example.eu")),
        [("manager_email", 2, "no person with email 'ghost@kestrel.example.eu'")],
        id="unknown-manager-email",
    ),
    pytest.param(
        "assets",
        csv_bytes(ASSETS, "A-X,Cold wallet,wallet,critical,ghost@kestrel.example.eu,,,,"),
        [("owner_email", 2, "no person with email 'ghost@kestrel.example.eu'")],
        id="unknown-owner-email",
    ),
    pytest.param(
        "assets",
        csv_bytes(ASSETS, "A-X,Cold wallet,wallet,important,,Z-NOWHERE,TP-GHOST,,A-GHOST"),
        [
            ("zone_external_id", 2, "no zone 'Z-NOWHERE'"),
            ("provider_external_id", 2, "no provider 'TP-GHOST'"),
            ("depends_on", 2, "no asset 'A-GHOST'"),
        ],
        id="unknown-zone-provider-dependency",
    ),
    pytest.param(
        "assets",
        csv_bytes(ASSETS, "A-X,Cold wallet,wallet,critical,,,,,"),
        [("owner_email", 2, "a critical asset needs an owner")],
        id="critical-asset-without-owner",
    ),
    pytest.param(
        "assets",
        csv_bytes(ASSETS, "A-X,Cold wallet,wallet,other,,,,,A-X"),
        [("depends_on", 2, "cannot depend on itself")],
        id="asset-depends-on-itself",
    ),
    pytest.param(
        "zones",
        csv_bytes(ZONES, "Z-MLT-SRV,Malta server room,S-MLT,,,server_room,critical,"),
        [("site_name", 2, "site 'S-MLT' is not in the register"), ("site_kind", 2, "give its site_kind")],
        id="unknown-site-without-name-and-kind",
    ),
    pytest.param(
        "zones",
        csv_bytes(
            ZONES,
            "Z-MLT-SRV,Malta server room,S-MLT,Malta DC,data_centre,server_room,critical,",
            "Z-MLT-RCP,Malta reception,S-MLT,Malta office,,reception,other,",
        ),
        [("site_name", 3, "differs from 'Malta DC' on line 2")],
        id="site-named-two-ways",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100), person(101), person(100, email="other@kestrel.example.eu")),
        [("external_id", 4, "'HR-0100' is also on line 2")],
        id="duplicate-external-id",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100), person(101, email="NEW.HIRE100@kestrel.example.eu")),
        [("email", 3, "is also on line 2")],
        id="duplicate-email-in-file",
    ),
    pytest.param(
        "people",
        csv_bytes(
            PEOPLE, person(100, email="aisha.khan@kestrel.example.eu", manager_email="lena.fischer@kestrel.example.eu")
        ),
        [("email", 2, "already belongs to HR-0012 (Aisha Khan)")],
        id="email-of-someone-else",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, idp_id="00u1kestrel0007", badge_id="B-10007")),
        [("idp_id", 2, "already belongs to HR-0007"), ("badge_id", 2, "already belongs to HR-0007")],
        id="idp-and-badge-of-someone-else",
    ),
    pytest.param(
        "people",
        csv_bytes(
            PEOPLE,
            person(100, manager_email="new.hire101@kestrel.example.eu"),
            person(101, manager_email="new.hire100@kestrel.example.eu"),
        ),
        [("manager_email", 2, "loops back"), ("manager_email", 3, "loops back")],
        id="reporting-loop",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100, manager_email="new.hire100@kestrel.example.eu")),
        [("manager_email", 2, "cannot be their own manager")],
        id="own-manager",
    ),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100), person(101) + ",surplus", person(102).rsplit(",", 3)[0]),
        [("row", 3, "too many cells: 14, but the header has 13"), ("row", 4, "too few cells: 10")],
        id="cell-count",
    ),
    pytest.param(
        "people",
        b"\n".join([PEOPLE.encode(), person(100).encode(), LATIN1_ROW]),
        [("file", 3, "byte offset")],
        id="not-utf8",
    ),
    pytest.param("people", b"", [("file", 1, "the file is empty")], id="empty-file"),
    pytest.param("people", b"\r\n \r\n", [("file", 1, "the file is empty")], id="blank-file"),
    pytest.param(
        "people",
        csv_bytes(PEOPLE, person(100), person(101, status="gone"), person(102, start_date="tomorrow")),
        [("status", 3, "is not allowed"), ("start_date", 4, "YYYY-MM-DD")],
        id="mixed-file-one-good-row-two-bad",
    ),
]


@pytest.mark.parametrize(("kind", "content", "expected"), CASES)
def test_bad_file_names_line_and_column_and_changes_nothing(
    rt: Runtime, kind: str, content: bytes, expected: list[tuple[str, int, str]]
) -> None:
    seed(rt, "people", "providers", "zones")
    before = counts(rt)
    for dry_run in (True, False):
        report = do_import(rt, kind, content, dry_run=dry_run)
        assert not report.ok
        assert not report.committed
        got = sorted((e.field, e.line) for e in report.errors)
        assert got == sorted((f, line) for f, line, _ in expected), report.as_dict()
        for field, line, words in expected:
            message = next(e.message for e in report.errors if (e.field, e.line) == (field, line))
            assert words in message, message
        if not dry_run:
            assert (report.created, report.updated, report.unchanged) == (0, 0, 0)
    assert counts(rt) == before


def test_non_utf8_reports_offset_and_no_rows(rt: Runtime) -> None:
    data = PEOPLE.encode() + b"\n" + b"HR-0101,jose@kestrel.example.eu,Jos\xe9 Garc\xeda,,,,,,,,,,\n"
    report = do_import(rt, "people", data)
    assert report.rows == 0
    offset = data.index(b"\xe9")
    (error,) = report.errors
    assert (error.field, error.line) == ("file", 2)
    assert f"byte offset {offset}" in error.message
    assert "0xe9" in error.message


def test_oversized_file_is_refused_before_parsing(rt: Runtime) -> None:
    data = csv_bytes(PEOPLE) + b"x" * MAX_BYTES
    before = counts(rt)
    report = do_import(rt, "people", data)
    assert [e.field for e in report.errors] == ["file"]
    assert "20 MB" in report.errors[0].message
    assert report.rows == 0
    assert counts(rt) == before


def test_one_bad_row_in_a_large_good_file_commits_nothing(rt: Runtime) -> None:
    seed(rt, "people")
    before = counts(rt)
    rows = [person(n) for n in range(200, 400)]
    rows[150] = person(350, manager_email="nobody@kestrel.example.eu")
    report = do_import(rt, "people", csv_bytes(PEOPLE, *rows))
    assert [(e.field, e.line) for e in report.errors] == [("manager_email", 152)]
    assert counts(rt) == before
    # The same file, fixed, commits all 200 rows.
    rows[150] = person(350)
    report = do_import(rt, "people", csv_bytes(PEOPLE, *rows))
    assert (report.committed, report.created) == (True, 200)
    assert counts(rt)["person"] == before["person"] + 200


def test_lines_count_from_the_file_not_the_records(rt: Runtime) -> None:
    """A quoted value spanning lines shifts the line numbers of the rows after it."""
    seed(rt, "people")
    data = csv_bytes(
        PEOPLE,
        person(100, job_title='"Analyst\nsecond line of the title"'),
        "",
        person(101, status="emeritus"),
    )
    report = do_import(rt, "people", data)
    assert [(e.field, e.line) for e in report.errors] == [("status", 5)]


def test_a_cell_beyond_the_csv_field_limit_is_reported(rt: Runtime) -> None:
    data = csv_bytes(PEOPLE, person(100), person(101, job_title="x" * 200_000))
    report = do_import(rt, "people", data)
    assert [(e.field, e.line) for e in report.errors] == [("file", 3)]
    assert "field larger than field limit" in report.errors[0].message


def test_data_files_stay_valid(rt: Runtime) -> None:
    # Guards the fixtures the error cases rely on.
    for kind in ("people", "providers", "zones", "assets"):
        assert do_import(rt, kind, (DATA / f"{kind}.csv").read_bytes()).ok
