"""The accounts and group memberships that really exist in an LDAP directory (§21, §25).

Reads with a simple bind (StartTLS on request, with the certificate checked),
read-only: reconciliation compares, it never changes the directory. Group
membership is the union of the users' memberOf (where an overlay keeps it) and
one search of the groups (groupOfNames/groupOfUniqueNames by member DN, posixGroup
by memberUid), so it is right whether or not the directory maintains memberOf.
A group is named by its cn, the name group mappings use.

The bind password is only ever passed to the bind: it is kept out of repr(),
describe(), error messages and therefore out of logs and the ledger.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ldap3 import ANONYMOUS, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPInvalidFilterError
from ldap3.utils.dn import parse_dn

from portcullis.access.account_csv import AccountRecord, parse_bool
from portcullis.core.errors import FieldError, PortcullisError, ValidationFailed

DEFAULT_USER_FILTER = "(objectClass=person)"
DEFAULT_GROUP_FILTER = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
# How directories mark a locked or disabled account: OpenLDAP ppolicy, 389 DS / FreeIPA, Active Directory.
LOCKED_TIME = "pwdAccountLockedTime"
NS_LOCK = "nsAccountLock"
AD_CONTROL = "userAccountControl"
AD_DISABLED = 0x2
PAGE = 500
# Group names by member DN (normalised) and by memberUid.
Memberships = tuple[dict[str, set[str]], dict[str, set[str]]]


class DirectoryUnavailable(PortcullisError):
    status = 502
    title = "Directory unavailable"


@dataclass(frozen=True)
class LdapQuery:
    """Where and how to read the accounts of one directory."""

    url: str
    base: str
    bind_dn: str = ""
    password: str = field(default="", repr=False)
    user_filter: str = DEFAULT_USER_FILTER
    group_base: str | None = None  # the user base if not given
    group_filter: str = DEFAULT_GROUP_FILTER
    start_tls: bool = False
    ca_file: str | None = None
    account_attribute: str = "uid"
    email_attribute: str = "mail"
    employee_id_attribute: str = "employeeNumber"
    idp_id_attribute: str | None = None
    # An extra attribute that, when true (or any value but false), marks the account disabled.
    disabled_attribute: str | None = None
    timeout: int = 10  # seconds; ldap3 packs it into a C long

    def describe(self) -> dict[str, Any]:
        """What was read, for the ledger and reports: everything but the password."""
        return {
            "url": self.url,
            "bind_dn": self.bind_dn,
            "base": self.base,
            "user_filter": self.user_filter,
            "group_base": self.group_base or self.base,
            "group_filter": self.group_filter,
            "start_tls": self.start_tls,
        }


def _values(attrs: dict[str, Any], name: str | None) -> list[str]:
    if not name:
        return []
    for key, value in attrs.items():
        if key.lower() == name.lower():
            items = value if isinstance(value, list) else [value]
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in items if v != ""]
    return []


def _first(attrs: dict[str, Any], name: str | None) -> str | None:
    vals = _values(attrs, name)
    return vals[0].strip() or None if vals else None


def norm_dn(dn: str) -> str:
    """A DN in a form two spellings of the same DN share (case, spacing)."""
    try:
        return ",".join(f"{a.strip().lower()}={v.strip().lower()}" for a, v, _ in parse_dn(dn))
    except LDAPException:
        return dn.strip().lower()


def rdn_value(dn: str) -> str:
    try:
        return str(parse_dn(dn)[0][1]).strip()
    except (LDAPException, IndexError):
        return dn.split(",", 1)[0].partition("=")[2].strip()


def _disabled(attrs: dict[str, Any], query: LdapQuery) -> bool:
    if _values(attrs, LOCKED_TIME):
        return True
    if any(parse_bool(v) for v in _values(attrs, NS_LOCK)):
        return True
    for v in _values(attrs, AD_CONTROL):
        if v.strip().isdigit() and int(v) & AD_DISABLED:
            return True
    # Any value but an explicit false counts: a directory that says "locked" means it.
    return any(parse_bool(v) is not False for v in _values(attrs, query.disabled_attribute))


def _server(query: LdapQuery) -> Server:
    parts = urlsplit(query.url.strip())
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise ValidationFailed(
            "The directory URL is not valid", [FieldError("url", "expected ldap://host[:port] or ldaps://host[:port]")]
        )
    try:
        port = parts.port
    except ValueError:
        raise ValidationFailed(
            "The directory URL is not valid", [FieldError("url", "the port is not a number")]
        ) from None
    use_ssl = parts.scheme == "ldaps"
    tls = None
    if use_ssl or query.start_tls:
        # ldap3 checks no certificate by default; a directory answering for another is no directory.
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=query.ca_file)
    return Server(
        parts.hostname,
        port=port or (636 if use_ssl else 389),
        use_ssl=use_ssl,
        tls=tls,
        get_info=NONE,
        connect_timeout=query.timeout,
    )


def _scrub(text: str, query: LdapQuery) -> str:
    return text.replace(query.password, "[redacted]") if query.password else text


def _search(conn: Connection, base: str, flt: str, attrs: list[str], field_name: str) -> Iterator[dict[str, Any]]:
    try:
        entries = conn.extend.standard.paged_search(
            base, flt, search_scope=SUBTREE, attributes=attrs, paged_size=PAGE, generator=True
        )
        for entry in entries:
            if entry.get("type") == "searchResEntry":
                yield entry
    except LDAPInvalidFilterError:
        raise ValidationFailed(
            "The search filter is not valid", [FieldError(field_name, f"{flt!r} is not an LDAP filter (RFC 4515)")]
        ) from None
    if conn.result and conn.result.get("result") not in (0, None):
        desc = conn.result.get("description", "")
        message = conn.result.get("message", "")
        if desc == "noSuchObject":
            raise ValidationFailed("The search base does not exist", [FieldError("base", f"{base!r}: {desc}")])
        raise DirectoryUnavailable(f"The directory refused the search under {base}: {desc} {message}".strip())


def _open(query: LdapQuery) -> Connection:
    server = _server(query)
    conn = Connection(
        server,
        user=query.bind_dn or None,
        password=query.password or None,
        authentication=SIMPLE if query.bind_dn else ANONYMOUS,
        read_only=True,
        receive_timeout=query.timeout,
        raise_exceptions=False,
    )
    try:
        conn.open()
        if query.start_tls and not server.ssl and not conn.start_tls():
            raise DirectoryUnavailable(f"StartTLS failed at {query.url}: {conn.result.get('description', '')}")
    except LDAPException as exc:
        conn.unbind()
        raise DirectoryUnavailable(
            f"Cannot reach the directory at {query.url}",
            [FieldError("url", _scrub(f"{exc.__class__.__name__}: {exc}", query))],
        ) from None
    if not conn.bind():
        desc = conn.result.get("description", "bind refused") if conn.result else "bind refused"
        conn.unbind()
        raise ValidationFailed(
            "The directory refused the bind", [FieldError("bind_dn", _scrub(f"{query.bind_dn!r}: {desc}", query))]
        )
    return conn


def _groups(conn: Connection, query: LdapQuery) -> Memberships:
    by_dn: dict[str, set[str]] = {}
    by_uid: dict[str, set[str]] = {}
    attrs = ["cn", "member", "uniqueMember", "memberUid"]
    for entry in _search(conn, query.group_base or query.base, query.group_filter, attrs, "group_filter"):
        a = entry.get("attributes", {})
        name = _first(a, "cn") or rdn_value(str(entry.get("dn", "")))
        for dn in _values(a, "member") + _values(a, "uniqueMember"):
            by_dn.setdefault(norm_dn(dn), set()).add(name)
        for uid in _values(a, "memberUid"):
            by_uid.setdefault(uid.strip().casefold(), set()).add(name)
    return by_dn, by_uid


def _user_attributes(query: LdapQuery) -> list[str]:
    names = [
        query.account_attribute,
        query.email_attribute,
        query.employee_id_attribute,
        "memberOf",
        LOCKED_TIME,
        NS_LOCK,
        AD_CONTROL,
        query.idp_id_attribute,
        query.disabled_attribute,
    ]
    return list(dict.fromkeys(n for n in names if n))


def _records(
    entries: Iterable[dict[str, Any]], query: LdapQuery, system: str, groups: Memberships
) -> tuple[list[AccountRecord], list[str]]:
    by_dn, by_uid = groups
    records: list[AccountRecord] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        dn = str(entry.get("dn", ""))
        a = entry.get("attributes", {})
        name = _first(a, query.account_attribute)
        if name is None or name.casefold() in seen:
            skipped.append(dn)
            continue
        seen.add(name.casefold())
        names = {rdn_value(g) for g in _values(a, "memberOf")}
        names |= by_dn.get(norm_dn(dn), set()) | by_uid.get(name.casefold(), set())
        email = _first(a, query.email_attribute)
        records.append(
            AccountRecord(
                system=system,
                account_name=name,
                email=email.lower() if email else None,
                employee_id=_first(a, query.employee_id_attribute),
                active=not _disabled(a, query),
                groups=tuple(sorted(names, key=str.casefold)),
                idp_id=_first(a, query.idp_id_attribute),
                dn=dn,
            )
        )
    return records, skipped


@dataclass
class DirectoryRead:
    records: list[AccountRecord]
    # Entries the user filter matched that have no account name (or repeat one).
    skipped: list[str]


def read_accounts(query: LdapQuery, system: str) -> DirectoryRead:
    """Every account under the base that the user filter matches, with its groups."""
    conn = _open(query)
    try:
        groups = _groups(conn, query)
        entries = _search(conn, query.base, query.user_filter, _user_attributes(query), "user_filter")
        records, skipped = _records(entries, query, system, groups)
    except LDAPException as exc:
        raise DirectoryUnavailable(
            f"Reading the directory at {query.url} failed", [FieldError("url", _scrub(str(exc), query))]
        ) from None
    finally:
        conn.unbind()
    return DirectoryRead(records, skipped)
