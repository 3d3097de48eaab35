"""The account record reconciliation works on, and reading it from CSV exports of other systems (§21, §25).

A target system that is not a directory (a trading back office, a cloud console,
a custody platform) can usually export its accounts; this reads such an export.
Columns: system, account, email, employee_id, active, groups (groups separated
by semicolons), and optionally idp_id. Like the inventory import, every bad row
is reported by line and column and nothing is written unless the whole file is good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portcullis.core.errors import ErrorCollector
from portcullis.inventory.csv_read import FILE, clean, read_table

COLUMNS = ("system", "account", "email", "employee_id", "active", "groups")
OPTIONAL_COLUMNS = ("idp_id",)
GROUP_SEPARATOR = ";"
_TRUE = frozenset({"true", "yes", "1", "y", "enabled", "active"})
_FALSE = frozenset({"false", "no", "0", "n", "disabled", "inactive", "locked"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_SYSTEM = 100
MAX_ACCOUNT = 300
MAX_GROUP = 300
MAX_EMPLOYEE_ID = 100
MAX_IDP_ID = 200


@dataclass(frozen=True)
class AccountRecord:
    """One account as it really exists in a target system, whatever the source."""

    system: str
    account_name: str
    email: str | None = None
    employee_id: str | None = None
    active: bool = True
    groups: tuple[str, ...] = ()
    idp_id: str | None = None
    # Where the record came from: the directory entry, or the line of the file.
    dn: str | None = None
    line: int | None = None

    def attributes(self) -> dict[str, str]:
        out = {"email": self.email, "employee_id": self.employee_id, "idp_id": self.idp_id, "dn": self.dn}
        return {k: v for k, v in out.items() if v}


def parse_bool(value: str) -> bool | None:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def split_groups(value: str) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for part in value.split(GROUP_SEPARATOR):
        name = part.strip()
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return tuple(seen.values())


def _header(cells: list[str], line: int, errors: ErrorCollector) -> dict[str, int] | None:
    names = [clean(c).lower() for c in cells]
    index: dict[str, int] = {}
    before = len(errors.errors)
    for pos, name in enumerate(names):
        if name not in COLUMNS and name not in OPTIONAL_COLUMNS:
            known = ", ".join(COLUMNS + OPTIONAL_COLUMNS)
            errors.add("header", f"unknown column {name!r} (column {pos + 1}); the columns are {known}", line)
        elif name in index:
            errors.add("header", f"column {name!r} appears twice", line)
        else:
            index[name] = pos
    for name in COLUMNS:
        if name not in index:
            errors.add("header", f"missing column {name!r}; the columns are " + ", ".join(COLUMNS), line)
    return None if len(errors.errors) > before else index


def _text(value: str, column: str, limit: int, line: int, errors: ErrorCollector, *, required: bool) -> str | None:
    if not value:
        if required:
            errors.add(column, "required; the cell is empty", line)
        return None
    if len(value) > limit:
        errors.add(column, f"{len(value)} characters; the limit is {limit}", line)
        return None
    return value


def _row(
    cells: list[str], index: dict[str, int], line: int, system: str | None, errors: ErrorCollector
) -> AccountRecord | None:
    get = {name: clean(cells[pos]) for name, pos in index.items()}
    before = len(errors.errors)
    sys_name = _text(get["system"], "system", MAX_SYSTEM, line, errors, required=True)
    if sys_name is not None and system is not None and sys_name != system:
        errors.add("system", f"{sys_name!r}, but this reconciliation is for system {system!r}", line)
    account = _text(get["account"], "account", MAX_ACCOUNT, line, errors, required=True)
    email = _text(get["email"].lower(), "email", 320, line, errors, required=False)
    if email is not None and not _EMAIL.match(email):
        errors.add("email", f"{email!r} is not an email address", line)
    employee_id = _text(get["employee_id"], "employee_id", MAX_EMPLOYEE_ID, line, errors, required=False)
    idp_id = _text(get.get("idp_id", ""), "idp_id", MAX_IDP_ID, line, errors, required=False)
    active = parse_bool(get["active"])
    if active is None:
        errors.add("active", f"{get['active']!r} is not true or false (true/false, yes/no, 1/0)", line)
    groups = split_groups(get["groups"])
    for g in groups:
        if len(g) > MAX_GROUP:
            errors.add("groups", f"a group name of {len(g)} characters; the limit is {MAX_GROUP}", line)
    if len(errors.errors) > before:
        return None
    assert sys_name is not None
    assert account is not None
    assert active is not None
    return AccountRecord(sys_name, account, email, employee_id, active, groups, idp_id, line=line)


def read_accounts(data: bytes, errors: ErrorCollector, *, system: str | None = None) -> list[AccountRecord]:
    """The file's accounts; problems go to `errors` by line and column (the header is line 1).

    With `system`, every row must name it: a file of another system must not
    mark this system's accounts as gone.
    """
    table = read_table(data, errors)
    if table is None:
        return []
    index = _header(table.header, table.header_line, errors)
    if index is None:
        return []
    if not table.records:
        errors.add(FILE, "the file has a header but no accounts", table.header_line)
    records: list[AccountRecord] = []
    first_line: dict[tuple[str, str], int] = {}
    width = len(table.header)
    for rec in table.records:
        if len(rec.cells) != width:
            many = "many" if len(rec.cells) > width else "few"
            errors.add(
                "row",
                f"too {many} cells: {len(rec.cells)}, but the header has {width} columns "
                "(a comma inside a value needs double quotes around the value)",
                rec.line,
            )
            continue
        account = _row(rec.cells, index, rec.line, system, errors)
        if account is None:
            continue
        ident = (account.system, account.account_name.casefold())
        if ident in first_line:
            errors.add(
                "account",
                f"{account.account_name!r} in {account.system} is also on line {first_line[ident]}",
                rec.line,
            )
            continue
        first_line[ident] = rec.line
        records.append(account)
    return records
