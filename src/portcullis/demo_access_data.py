"""The demo firm's access governance as data: catalogue, roles, training, legacy access, directory.

Like demo_data, everything refers to people, assets and zones by external id.
Times that must stay believable whenever the demo is built are given in days
before the build ("days ago"); dates that belong to the firm's history (when a
person joined) are fixed, like those in demo_data.

The demo is meant to show problems a new user should find at once (issue 4):
a leaver still holding access, privileged access without MFA, a
separation-of-duties conflict, an orphan directory account, and the
reconciliation's other two (access with no grant, a grant never provisioned).
Portcullis refuses or undoes the first three when they go through it, so they
arrive here as access that existed before Portcullis (LEGACY_GRANTS) and as
drift in the directory (DIRECTORY).
"""

from __future__ import annotations

from dataclasses import dataclass

from portcullis.demo_data import COMPLIANCE, ENGINEERING, OPERATIONS, PEOPLE_SPECS, SECURITY, SUPPORT, PersonSpec

# --- training courses (§13, §19, §21) ---------------------------------------------

SEC_AWARE = "SEC-AWARE-2026"  # security awareness
PRIV_ACCESS = "PRIV-ACCESS"  # handling privileged access
AML = "AML-2026"  # anti-money laundering
PHYS_DC = "PHYS-DC"  # data centre and server room safety

# How long a completion counts, in days.
VALIDITY = {SEC_AWARE: 365, PRIV_ACCESS: 365, AML: 365, PHYS_DC: 730}


@dataclass(frozen=True)
class TrainingSpec:
    person: str
    course: str
    days_ago: int  # completed this many days before the build

    @property
    def lapsed(self) -> bool:
        return self.days_ago >= VALIDITY[self.course]


def _staff() -> list[PersonSpec]:
    return [p for p in PEOPLE_SPECS if p.kind != "service_account"]


# Not yet done: two joiners and two contractors; and two whose yearly refresher lapsed.
SEC_AWARE_MISSING = frozenset({"AUR-011", "AUR-021", "AUR-039", "AUR-050"})
SEC_AWARE_LAPSED = frozenset({"AUR-043", "AUR-054"})
PRIV_ACCESS_DONE = ("AUR-004", "AUR-006", "AUR-012", "AUR-014", "AUR-015", "AUR-017", "AUR-022", "AUR-023",
                    "AUR-025", "AUR-031", "AUR-032", "AUR-033")
PRIV_ACCESS_LAPSED = ("AUR-013",)  # an SRE on call whose refresher ran out three and a half weeks ago
AML_DONE = ("AUR-034", "AUR-035", "AUR-036", "AUR-037", "AUR-038", "AUR-040", "AUR-045")
PHYS_DC_DONE = ("AUR-006", "AUR-012", "AUR-013", "AUR-014", "AUR-015", "AUR-027", "AUR-028", "AUR-029",
                "AUR-031", "AUR-032", "AUR-033")
PHYS_DC_LAPSED = ("AUR-030",)


def _spread(external_id: str, low: int, span: int) -> int:
    # Completions spread over the year, stable across rebuilds.
    return low + (int(external_id.split("-")[1]) * 37) % span


def training() -> list[TrainingSpec]:
    out: list[TrainingSpec] = []
    for p in _staff():
        if p.external_id in SEC_AWARE_MISSING:
            continue
        lapsed = p.external_id in SEC_AWARE_LAPSED
        out.append(TrainingSpec(p.external_id, SEC_AWARE, 400 if lapsed else _spread(p.external_id, 30, 300)))
    out += [TrainingSpec(x, PRIV_ACCESS, _spread(x, 40, 250)) for x in PRIV_ACCESS_DONE]
    out += [TrainingSpec(x, PRIV_ACCESS, 390) for x in PRIV_ACCESS_LAPSED]
    out += [TrainingSpec(x, AML, _spread(x, 60, 200)) for x in AML_DONE]
    out += [TrainingSpec(x, PHYS_DC, _spread(x, 50, 500)) for x in PHYS_DC_DONE]
    out += [TrainingSpec(x, PHYS_DC, 800) for x in PHYS_DC_LAPSED]
    return out


# --- entitlements (§19, §21, §22, §24) ------------------------------------------------

OWNER = "owner"
MANAGER = "manager"
OFFICER = "security_officer"


@dataclass(frozen=True)
class EntitlementSpec:
    key: str
    name: str
    asset: str | None = None
    zone: str | None = None
    description: str = ""
    privileged: bool = False
    remote_admin: bool = False
    training: tuple[str, ...] = ()
    max_days: int | None = None
    approvers: tuple[str, ...] = (OWNER,)
    # None: the tier's default for privileged access (three for this firm's enhanced tier), else one.
    min_approvals: int | None = None
    scope: str = ""


E = EntitlementSpec

ENTITLEMENTS: list[EntitlementSpec] = [
    # Privileged and remote administration: ad hoc, short, two approvers or more.
    E("bastion-ssh", "Bastion SSH to the production fleet", asset="AST-BASTION",
      description="Interactive SSH through the bastion to the bare-metal servers; every session is recorded.",
      privileged=True, remote_admin=True, training=(PRIV_ACCESS,), max_days=30, approvers=(OWNER, OFFICER),
      min_approvals=2),
    E("cloud-prod-admin", "Production cloud account administrator", asset="AST-CLOUD-PROD",
      description="Console and API administrator of the production cloud account.",
      privileged=True, remote_admin=True, training=(PRIV_ACCESS,), max_days=14, approvers=(OWNER, OFFICER),
      min_approvals=2),
    E("idp-admin", "Identity provider administrator", asset="AST-IDP",
      privileged=True, remote_admin=True, training=(PRIV_ACCESS,), max_days=14, approvers=(OWNER, OFFICER),
      min_approvals=2),
    E("db-prod-admin", "Production database administrator", asset="AST-DB-PROD",
      description="Superuser on the production PostgreSQL cluster, for upgrades and incidents.",
      privileged=True, training=(PRIV_ACCESS,), max_days=14, approvers=(OWNER, OFFICER), min_approvals=2),
    E("db-prod-readonly", "Production database read-only", asset="AST-DB-PROD",
      description="Read-only role on the production database replicas.", max_days=90),
    E("hsm-admin", "HSM administrator (primary HSM)", asset="AST-HSM-1",
      description="Security officer role on the primary HSM: key generation, backup and policy changes.",
      privileged=True, training=(PRIV_ACCESS,), max_days=7, approvers=(OWNER, MANAGER, OFFICER)),
    E("hot-wallet-signer", "Hot wallet withdrawal signer", asset="AST-HOT-WALLET",
      description="Approves and signs withdrawals from the hot wallet through the MPC signing service.",
      privileged=True, training=(PRIV_ACCESS,), max_days=30, approvers=(OWNER, OFFICER), min_approvals=2),
    E("cold-wallet-ceremony", "Cold wallet signing ceremony participant", asset="AST-COLD-SIGNING",
      description="Takes part in an offline signing ceremony on the air-gapped laptops.",
      privileged=True, training=(PRIV_ACCESS,), max_days=2, approvers=(OWNER, MANAGER, OFFICER)),
    # Everyday logical access.
    E("match-deploy", "Matching engine deployment", asset="AST-MATCH",
      description="Starts a release of the matching engine through the deployment pipeline.",
      max_days=90, approvers=(OWNER, MANAGER)),
    E("vpn-access", "VPN access", asset="AST-VPN", max_days=365, approvers=(MANAGER,)),
    E("kyc-console", "KYC case console", asset="AST-KYC", training=(AML,), max_days=365),
    E("txmon-analyst", "Transaction monitoring analyst", asset="AST-TXMON", training=(AML,), max_days=365),
    E("siem-analyst", "SIEM analyst", asset="AST-SIEM", description="Searches and triages security alerts.",
      max_days=365),
    E("crm-agent", "Customer support helpdesk agent", asset="AST-HELPDESK", max_days=365, approvers=(MANAGER,)),
    E("website-cms", "Website content editor", asset="AST-WEB", max_days=90),
    # Physical access to zones (§19): ad hoc and short, except the office floor.
    E("office-floor-entry", "Office floor entry", zone="ZONE-LUX-FLOOR", training=(SEC_AWARE,), max_days=365,
      approvers=(MANAGER,)),
    E("server-room-entry", "Server room entry", zone="ZONE-LUX-SERVER", training=(PHYS_DC,), max_days=7),
    E("safe-room-entry", "Safe room entry", zone="ZONE-LUX-SAFE", training=(PHYS_DC,), max_days=1,
      approvers=(OWNER, OFFICER), min_approvals=2),
    E("dc-cage-entry", "Colocation cage C-14 entry", zone="ZONE-DC1-CAGE", training=(PHYS_DC,), max_days=7),
    # Service accounts: only what the service needs (§21, last sentence).
    E("svc-ci-deploy-prod", "Production deployment (CI pipeline)", asset="AST-CLOUD-PROD",
      scope="Push signed images to the production registry and roll out the exchange and api namespaces; "
      "no IAM, no secrets read, no other namespace.", approvers=(OWNER, OFFICER)),
    E("svc-backup-writer", "Backup writer", asset="AST-BACKUP",
      scope="Write-only to the nightly backup bucket; cannot list, read back, delete or change retention."),
    E("svc-kyc-sync", "KYC status synchronisation", asset="AST-KYC",
      scope="Read applicant verification status through the provider API; no documents, no case notes."),
]

# --- roles (§22) ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleSpec:
    key: str
    name: str
    entitlements: tuple[str, ...]
    departments: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("employee", "contractor")
    description: str = ""
    holders: tuple[str, ...] = ()  # person external ids; "All staff" is computed


def _ids(first: int, last: int) -> tuple[str, ...]:
    return tuple(f"AUR-{n:03d}" for n in range(first, last + 1))


ALL_STAFF = "all-staff"

ROLES: list[RoleSpec] = [
    RoleSpec("engineer", "Engineer", ("match-deploy", "db-prod-readonly", "vpn-access"), (ENGINEERING,),
             description="Builds and ships the exchange.", holders=_ids(5, 20)),
    RoleSpec("sre-on-call", "SRE on call", ("bastion-ssh", "cloud-prod-admin"), (ENGINEERING, OPERATIONS),
             ("employee",), "The on-call rotation: privileged access held standing, as incidents do not wait.",
             holders=("AUR-012", "AUR-013")),
    # The hot wallet only: the cold wallet ceremony is kept apart by a separation-of-duties rule.
    RoleSpec("custody-operator", "Custody operator", ("hot-wallet-signer",), (OPERATIONS,), ("employee",),
             "Signs hot wallet withdrawals.", holders=("AUR-031", "AUR-033")),
    RoleSpec("compliance-analyst", "Compliance analyst", ("kyc-console", "txmon-analyst", "siem-analyst"),
             (COMPLIANCE,), description="Reviews onboarding cases and transaction alerts.",
             holders=_ids(36, 40)),
    RoleSpec("security-operations", "Security operations", ("siem-analyst", "vpn-access"), (SECURITY,),
             ("employee",), "Monitors and responds to security alerts.", holders=_ids(22, 25)),
    RoleSpec("support-agent", "Support agent", ("crm-agent",), (SUPPORT,),
             description="Answers clients in the helpdesk.",
             holders=("AUR-045", "AUR-046", "AUR-047", "AUR-048", "AUR-050", "AUR-051")),
    RoleSpec(ALL_STAFF, "All staff", ("office-floor-entry",),
             description="Everyone with a badge enters the office floor."),
]


@dataclass(frozen=True)
class SodSpec:
    name: str
    left: str
    right: str
    reason: str


SOD_RULES: list[SodSpec] = [
    SodSpec("Hot wallet apart from cold wallet", "hot-wallet-signer", "cold-wallet-ceremony",
            "One person able to sign from both the hot wallet and the cold wallet could move client assets "
            "from the offline reserve to the online wallet and out, unchecked."),
    SodSpec("Database administration apart from security monitoring", "db-prod-admin", "siem-analyst",
            "Those who administer the production database must not also watch its logs: "
            "they could hide their own actions."),
]

# --- access that existed before Portcullis ------------------------------------------------

LEGACY_SOURCE = "legacy spreadsheet"


@dataclass(frozen=True)
class LegacyGrantSpec:
    person: str
    entitlement: str
    note: str
    since: str | None = None  # a date in the firm's history (standing access)
    days_ago: int | None = None  # for time-bound access: started this many days before the build...
    days: int | None = None  # ...for this many days


LEGACY_GRANTS: list[LegacyGrantSpec] = [
    LegacyGrantSpec("AUR-052", "crm-agent", "helpdesk agent seat; nobody removed it when he left on 2026-09-30",
                    since="2021-06-01"),
    LegacyGrantSpec("AUR-026", "bastion-ssh", "penetration test engagement, agreed by email; the tester's "
                    "identity provider account was never enrolled in MFA", days_ago=25, days=30),
    LegacyGrantSpec("AUR-032", "hot-wallet-signer", "withdrawal signer since joining", since="2021-07-01"),
    LegacyGrantSpec("AUR-032", "cold-wallet-ceremony", "added as a ceremony stand-in in 2022 and kept",
                    since="2022-03-01"),
    LegacyGrantSpec("AUR-008", "cloud-prod-admin", "console administrator from before deployments went "
                    "through CI", since="2022-01-10"),
    LegacyGrantSpec("SVC-001", "svc-ci-deploy-prod", "deployment pipeline", since="2021-02-01"),
    LegacyGrantSpec("SVC-002", "svc-backup-writer", "nightly backup job", since="2021-03-15"),
    LegacyGrantSpec("SVC-003", "svc-kyc-sync", "KYC provider synchronisation", since="2022-01-20"),
]
# Withdrawn by the CISO once Portcullis showed it (days before the build).
REVOKED_LEGACY = ("AUR-008", "cloud-prod-admin",
                  "legacy console administrator access; production changes go through the CI pipeline")

# --- the corporate directory, as reconciliation reads it (§21, §25) ----------------------

DIRECTORY_SYSTEM = "corp-ldap"
GROUP_MAPPINGS = {"sre-bastion": "bastion-ssh", "db-readonly": "db-prod-readonly", "support-crm": "crm-agent"}

_ENGINEERS = set(ROLES[0].holders)
GROUP_MEMBERS: dict[str, frozenset[str]] = {
    # The two SREs on call, and the penetration tester's legacy access.
    "sre-bastion": frozenset({"AUR-012", "AUR-013", "AUR-026"}),
    # Drift both ways: one engineer was never added (a grant not provisioned), and a market
    # risk analyst was added by hand after his request expired (access with no grant).
    "db-readonly": frozenset((_ENGINEERS - {"AUR-010"}) | {"AUR-056"}),
    # Support, and the leaver whose account is still live.
    "support-crm": frozenset({"AUR-045", "AUR-046", "AUR-047", "AUR-048", "AUR-050", "AUR-051", "AUR-052"}),
}
# Leavers' and suspended people's accounts are disabled, except this leaver's: the open door.
LIVE_LEAVER = "AUR-052"
# A backup job retired years ago whose account still reads the production database.
ORPHAN_ACCOUNT = "svc-legacy-backup"
ORPHAN_GROUPS = ("backup-operators", "db-readonly")


@dataclass(frozen=True)
class DirectoryAccount:
    account: str
    email: str | None
    active: bool
    groups: tuple[str, ...]
    dn: str


def _dn(uid: str, ou: str) -> str:
    return f"uid={uid},ou={ou},dc=aurora,dc=example"


def directory() -> list[DirectoryAccount]:
    accounts: list[DirectoryAccount] = []
    for p in PEOPLE_SPECS:
        uid = p.email.split("@", 1)[0]
        service = p.kind == "service_account"
        groups = ["service-accounts" if service else "staff"]
        groups += sorted(g for g, members in GROUP_MEMBERS.items() if p.external_id in members)
        active = p.status not in ("leaver", "suspended") or p.external_id == LIVE_LEAVER
        accounts.append(DirectoryAccount(uid, p.email, active, tuple(groups), _dn(uid, "services" if service else
                                                                                  "people")))
    accounts.append(DirectoryAccount(ORPHAN_ACCOUNT, None, True, ORPHAN_GROUPS, _dn(ORPHAN_ACCOUNT, "services")))
    return accounts
