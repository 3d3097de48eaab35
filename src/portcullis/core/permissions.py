"""Platform roles and the one permission table the API, CLI and pages consult."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SECURITY_OFFICER = "security_officer"
    APPROVER = "approver"
    REVIEWER = "reviewer"
    KEY_CUSTODIAN = "key_custodian"
    AUDITOR = "auditor"
    MANAGEMENT_BODY = "management_body"
    STAFF = "staff"


# Roles that can change access, keys or certificates must use MFA (DESIGN.md).
MFA_REQUIRED = frozenset(
    {Role.ADMIN, Role.SECURITY_OFFICER, Role.APPROVER, Role.KEY_CUSTODIAN}
)


class Permission(StrEnum):
    INVENTORY_READ = "inventory.read"
    INVENTORY_WRITE = "inventory.write"
    ORGANISATION_WRITE = "organisation.write"
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"
    AUDIT_READ = "audit.read"
    EVIDENCE_EXPORT = "evidence.export"
    LEDGER_ADMIN = "ledger.admin"  # purge expired payloads: opens the append-only guard
    ACCESS_READ = "access.read"  # every grant, request and finding
    ACCESS_REQUEST = "access.request"  # ask for access, see one's own
    ACCESS_APPROVE = "access.approve"  # decide requests one is eligible for
    ACCESS_ADMIN = "access.admin"  # the catalogue, role grants, revocation, reconciliation
    IDENTITY_PROVISION = "identity.provision"  # SCIM: joiners, movers, leavers from the IdP
    EVENTS_READ = "events.read"  # access events, sources, quarantine
    EVENTS_INGEST = "events.ingest"  # feed records into a source
    EVENTS_ADMIN = "events.admin"  # event sources: create, configure, tokens, retention
    KEYS_READ = "keys.read"  # the key register, operations, ceremonies (never material)
    KEYS_ADMIN = "keys.admin"  # register, generate, rotate, change state, request dual-control operations
    KEYS_CUSTODY = "keys.custody"  # approve dual-control operations, enter master-key shares
    KEYS_USE = "keys.use"  # sign, encrypt, wrap ... with keys whose policy names the caller
    CERTS_READ = "certs.read"  # the certificate and device register, notices, renewals, CRLs
    CERTS_ADMIN = "certs.admin"  # register, scan, renew, issue and revoke with the internal CA, devices
    SELF = "self"  # own profile, own MFA, own tokens


_ALL_READ = {Permission.INVENTORY_READ, Permission.SELF}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SECURITY_OFFICER: frozenset(
        _ALL_READ
        | {
            Permission.INVENTORY_WRITE,
            Permission.ORGANISATION_WRITE,
            Permission.USERS_READ,
            Permission.AUDIT_READ,
            Permission.EVIDENCE_EXPORT,
            Permission.ACCESS_READ,
            Permission.ACCESS_REQUEST,
            Permission.ACCESS_APPROVE,
            Permission.ACCESS_ADMIN,
            Permission.EVENTS_READ,
            Permission.EVENTS_INGEST,
            Permission.EVENTS_ADMIN,
            Permission.KEYS_READ,
            Permission.KEYS_ADMIN,
            Permission.CERTS_READ,
            Permission.CERTS_ADMIN,
        }
    ),
    Role.APPROVER: frozenset(
        _ALL_READ | {Permission.ACCESS_READ, Permission.ACCESS_REQUEST, Permission.ACCESS_APPROVE}
    ),
    Role.REVIEWER: frozenset(
        _ALL_READ | {Permission.ACCESS_READ, Permission.ACCESS_REQUEST, Permission.EVENTS_READ}
    ),
    Role.KEY_CUSTODIAN: frozenset(
        _ALL_READ
        | {
            Permission.ACCESS_REQUEST,
            Permission.KEYS_READ,
            Permission.KEYS_CUSTODY,
            Permission.KEYS_USE,
            Permission.CERTS_READ,
        }
    ),
    Role.AUDITOR: frozenset(
        _ALL_READ
        | {
            Permission.USERS_READ,
            Permission.AUDIT_READ,
            Permission.EVIDENCE_EXPORT,
            Permission.ACCESS_READ,
            Permission.EVENTS_READ,
            Permission.KEYS_READ,
            Permission.CERTS_READ,
        }
    ),
    Role.MANAGEMENT_BODY: frozenset(_ALL_READ | {Permission.AUDIT_READ, Permission.ACCESS_READ}),
    Role.STAFF: frozenset({Permission.SELF, Permission.ACCESS_REQUEST}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]
