"""The syslog parser against Loghub's hand-checked structured CSVs (an oracle independent of the parser).

Each line of OpenSSH_2k.log and Linux_2k.log has a template id in the CSV; the
expected kind per template is written here. Actor and source address are read
from the CSV's Content with the template turned into a regex, so they do not
come from the parser's own patterns.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portcullis.events.parsers.base import ActorKind, Event, Method
from portcullis.events.parsers.syslog import SyslogParser


def shared_data() -> Path:
    return Path(__file__).resolve().parents[3] / "shared" / "data"


LOGS = shared_data() / "logs"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
OPENSSH_YEAR = 2017
LINUX_YEAR = 2005  # the ftpd lines of Linux_2k.log name it ("at Fri Jun 17 07:07:00 2005")


def ids(kind: str, template_ids: str) -> dict[str, str]:
    return dict.fromkeys(template_ids.split(), kind)


OPENSSH_KINDS: dict[str, str] = {
    "E1": "authentication.login.success",
    "E2": "session.disconnect.unknown",
    "E3": "other.no_identification.unknown",
    "E4": "authentication.too_many_failures.failure",
    "E5": "authentication.too_many_failures.failure",
    # Logged by sshd at error level: the disconnect reason was not a normal "by application" one.
    "E6": "session.disconnect.failure",
    "E7": "session.disconnect.failure",
    "E8": "authentication.login.failure",
    "E9": "authentication.login.failure",
    "E10": "authentication.login.failure",
    "E11": "other.error.unknown",
    "E12": "authentication.invalid_user.failure",
    "E13": "authentication.invalid_user.failure",
    "E14": "authentication.too_many_failures.failure",
    "E15": "authentication.too_many_failures.failure",
    "E16": "authentication.too_many_failures.failure",
    "E17": "authentication.too_many_failures.failure",
    "E18": "authentication.too_many_failures.failure",
    "E19": "authentication.login.failure",
    "E20": "authentication.login.failure",
    "E21": "authentication.unknown_user.failure",
    "E22": "session.close.success",
    "E23": "session.open.success",
    "E24": "session.disconnect.unknown",
    "E25": "session.disconnect.unknown",
    "E26": "session.disconnect.unknown",
    "E27": "other.reverse_mapping_failed.unknown",
}

LINUX_KINDS: dict[str, str] = {
    "E9": "authentication.login.success",  # ANONYMOUS FTP LOGIN
    "E13": "authentication.login.failure",  # klogind
    "E14": "authentication.login.failure",
    "E15": "authentication.login.failure",  # gdm(pam_unix)
    "E16": "authentication.login.failure",  # sshd(pam_unix)
    "E17": "authentication.login.failure",
    "E18": "authentication.login.failure",
    "E19": "authentication.login.failure",
    "E27": "authentication.unknown_user.failure",  # gdm and sshd alike
    "E29": "other.connection.unknown",  # ftpd connection
    "E31": "authentication.login.failure",  # gdm-binary
    "E61": "authentication.login.failure",  # Kerberos authentication failed
    "E91": "authentication.login.success",  # ROOT LOGIN ON tty2
    "E101": "session.close.success",  # login, sshd and su alike
    "E102": "session.open.success",  # sshd and su alike
    "E103": "session.open.success",
    "E112": "other.timeout.unknown",
    **ids("other.service.unknown", "E37 E38 E49 E58 E65 E85 E92 E93 E94 E106"),
    **ids("other.message.unknown", "E1 E8 E23 E36 E47 E48 E51 E54 E63 E75 E88 E89 E90 E95 E104 E105 E114 E116"),
    **ids(
        "other.kernel.unknown",
        "E2 E3 E4 E5 E6 E7 E10 E11 E12 E20 E21 E22 E24 E25 E26 E28 E30 E32 E33 E34 E35 E39 E40 E41 E42 E43 E44"
        " E45 E46 E50 E52 E53 E55 E56 E57 E59 E60 E62 E64 E66 E67 E68 E69 E70 E71 E72 E73 E74 E76 E77 E78 E79"
        " E80 E81 E82 E83 E84 E86 E87 E96 E97 E98 E99 E100 E107 E108 E109 E110 E111 E113 E115 E117 E118",
    ),
}

# Where the actor and the source address are in a template: the n-th <*> (1-based), a literal, or "" for none.
Where = int | str
OPENSSH_FIELDS: dict[str, tuple[Where, Where]] = {
    "E1": (1, 2),
    "E2": ("", 1),
    "E3": ("", 1),
    "E4": ("admin", ""),
    "E5": ("root", ""),
    "E6": ("", 1),
    "E7": ("", 1),
    "E8": (1, 2),
    "E9": (1, 2),
    "E10": (1, 2),
    "E12": (1, ""),
    "E13": (1, 2),
    "E14": ("root", 2),
    "E15": ("", 4),
    "E16": ("", 4),
    "E17": ("root", 4),
    "E19": ("", 3),
    "E20": (4, 3),
    "E22": (1, ""),
    "E23": (1, ""),
    "E24": ("", 1),
    "E25": ("", 1),
    "E26": ("", 1),
    "E27": ("", 2),
}
LINUX_FIELDS: dict[str, tuple[Where, Where]] = {
    "E9": ("anonymous", 1),
    "E13": ("", 1),
    "E14": ("", 1),
    "E16": ("", 1),
    "E17": ("guest", 1),
    "E18": ("root", 1),
    "E19": ("test", 1),
    "E29": ("", 1),
    "E91": ("root", ""),
    "E101": (1, ""),
    "E102": (1, ""),
    "E103": (1, ""),
}
OPENSSH_METHODS = {
    "E1": Method.PASSWORD,
    "E8": Method.NONE,
    "E9": Method.PASSWORD,
    "E10": Method.PASSWORD,
    "E14": Method.PASSWORD,
}
LINUX_METHODS = {"E13": Method.KERBEROS, "E14": Method.KERBEROS, "E61": Method.KERBEROS}


@dataclass(frozen=True)
class Expected:
    line_no: int
    raw: str
    content: str
    template: str
    kind: str
    actor: str
    address: str
    host: str
    program: str
    time: datetime
    method: Method | None


def template_regex(template: str) -> re.Pattern[str]:
    return re.compile("(.*?)".join(re.escape(part) for part in template.split("<*>")))


def pick(where: Where, match: re.Match[str]) -> str:
    return match.group(where) if isinstance(where, int) else where


def load(
    name: str,
    year: int,
    kinds: dict[str, str],
    fields: dict[str, tuple[Where, Where]],
    methods: dict[str, Method],
    columns: tuple[str, str, str, str, str],
) -> list[Expected]:
    """The expected event of each line, from the structured CSV; `columns` name month, day, time, host, program."""
    month_col, day_col, time_col, host_col, program_col = columns
    raws = (LOGS / name).read_text(encoding="utf-8").splitlines()
    with (LOGS / f"{name}_structured.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(raws) == 2000
    out = []
    for row, raw in zip(rows, raws, strict=True):
        template_id = row["EventId"]
        m = template_regex(row["EventTemplate"]).fullmatch(row["Content"].strip())
        assert m is not None, f"line {row['LineId']}: the CSV's template does not match its content"
        actor_at, address_at = fields.get(template_id, ("", ""))
        hour, minute, second = (int(x) for x in row[time_col].split(":"))
        out.append(
            Expected(
                line_no=int(row["LineId"]),
                raw=raw,
                content=row["Content"].strip(),
                template=template_id,
                kind=kinds[template_id],
                actor=pick(actor_at, m),
                address=pick(address_at, m).strip(),
                host=row[host_col],
                program=row[program_col],
                time=datetime(
                    year, MONTHS.index(row[month_col]) + 1, int(row[day_col]), hour, minute, second, tzinfo=UTC
                ),
                method=methods.get(template_id),
            )
        )
    return out


def check(parser: SyslogParser, expected: list[Expected], privileged: set[int]) -> None:
    problems: list[str] = []
    for exp in expected:
        event = parser.parse(exp.raw)
        assert isinstance(event, Event), f"line {exp.line_no}: no event"
        got = (event.kind, event.actor, event.source_address, event.host, event.time, event.privileged)
        want = (exp.kind, exp.actor, exp.address, exp.host, exp.time, exp.line_no in privileged)
        if got != want:
            problems.append(f"line {exp.line_no} {exp.template}: got {got}, want {want}")
        if event.actor_kind is not (ActorKind.USERNAME if exp.actor else ActorKind.NONE):
            problems.append(f"line {exp.line_no} {exp.template}: actor_kind {event.actor_kind}")
        if exp.method is not None and event.method is not exp.method:
            problems.append(f"line {exp.line_no} {exp.template}: method {event.method}, want {exp.method}")
    assert not problems, "\n".join(problems[:20])


@pytest.fixture(scope="module")
def openssh() -> list[Expected]:
    return load(
        "OpenSSH_2k.log",
        OPENSSH_YEAR,
        OPENSSH_KINDS,
        OPENSSH_FIELDS,
        OPENSSH_METHODS,
        ("Date", "Day", "Time", "Component", "Component"),
    )


@pytest.fixture(scope="module")
def linux() -> list[Expected]:
    return load(
        "Linux_2k.log",
        LINUX_YEAR,
        LINUX_KINDS,
        LINUX_FIELDS,
        LINUX_METHODS,
        ("Month", "Date", "Time", "Level", "Component"),
    )


def test_every_template_has_an_expected_kind(openssh: list[Expected], linux: list[Expected]) -> None:
    assert {e.template for e in openssh} == set(OPENSSH_KINDS)
    assert {e.template for e in linux} == set(LINUX_KINDS)


def test_openssh_lines_match_the_structured_csv(openssh: list[Expected]) -> None:
    # Only an account named root makes an sshd event privileged.
    privileged = {e.line_no for e in openssh if e.actor == "root"}
    assert len(privileged) > 700
    check(SyslogParser({"year": OPENSSH_YEAR}), openssh, privileged)


def test_linux_lines_match_the_structured_csv(linux: list[Expected]) -> None:
    # su's sessions are privileged whoever they are for; otherwise only root's.
    privileged = {e.line_no for e in linux if e.program.startswith("su(") or e.actor == "root"}
    assert {e.template for e in linux if e.line_no in privileged} >= {"E18", "E91", "E101", "E102", "E103"}
    check(SyslogParser({"year": LINUX_YEAR}), linux, privileged)


def test_shared_templates_do_not_depend_on_the_program(linux: list[Expected]) -> None:
    parser = SyslogParser({"year": LINUX_YEAR})
    by_template: dict[str, set[tuple[str, str]]] = {}
    for exp in linux:
        if exp.template in {"E27", "E101", "E102"}:
            event = parser.parse(exp.raw)
            assert event is not None
            by_template.setdefault(exp.template, set()).add((exp.program, event.kind))
    for template, seen in by_template.items():
        programs = {program for program, _ in seen}
        assert len(programs) >= 2, f"{template} should come from several programs: {programs}"
        assert {kind for _, kind in seen} == {LINUX_KINDS[template]}


def test_linux_su_sessions_are_privileged_and_sshd_ones_for_others_are_not(linux: list[Expected]) -> None:
    parser = SyslogParser({"year": LINUX_YEAR})
    for exp in linux:
        event = parser.parse(exp.raw)
        assert event is not None
        if exp.template == "E102" and exp.program.startswith("su("):
            assert event.privileged, exp.raw
        if exp.template == "E102" and exp.program.startswith("sshd(") and exp.actor != "root":
            assert not event.privileged, exp.raw


def test_raw_and_structured_files_line_up(openssh: list[Expected], linux: list[Expected]) -> None:
    # Guards the oracle itself: line n of the log is row n of the CSV.
    for exp in openssh + linux:
        assert exp.raw.rstrip().endswith(exp.content), exp.line_no
