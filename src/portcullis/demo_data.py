"""The demo organisation as data: a 60-person crypto-asset offeror in Luxembourg.

Everything the demo builds is declared here, referring to other records by
external id, so that later issues (access grants, keys, certificates, entries)
extend the same firm instead of inventing a new one. All names, identifiers and
companies are fictitious; the LEIs are well-formed but not registered.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import date

from portcullis.core.lei import with_check_digits

DOMAIN = "aurora.example"

# --- the firm (§11: size, risk profile, complexity) ------------------------------

ORGANISATION = {
    "legal_name": "Aurora Digital Assets S.A.",
    "lei": with_check_digits("529900AURDA7X2LQ9K"),
    "competent_authority": "Commission de Surveillance du Secteur Financier (CSSF)",
    "country": "LU",
    "staff_count": 60,
    # A trading venue holding client crypto-assets: high risk, but one entity,
    # one country and one product line keep complexity medium.
    "risk_profile": "high",
    "complexity": "medium",
}

# A tier default the firm replaced, with its reason, as §11 allows.
OVERRIDES = [
    {
        "key": "retention_days.important",
        "value": 2555,
        "reason": "Access logs of the KYC and transaction monitoring systems (important) support AML "
        "investigations, so they are kept seven years like those of critical assets.",
    },
]

# --- platform users of Portcullis itself ---------------------------------------

ADMIN_EMAIL = f"demo-admin@{DOMAIN}"
ADMIN_NAME = "Demo Administrator"
ADMIN_PASSWORD = "aurora-demo-admin-2026"  # noqa: S105 (published demo login)
AUDITOR_EMAIL = f"demo-auditor@{DOMAIN}"
AUDITOR_NAME = "Demo Auditor"
AUDITOR_PASSWORD = "aurora-demo-auditor-2026"  # noqa: S105
# Fixed so that a person can add it to an authenticator once and keep using it
# across `portcullis demo --reset`. Never use a published secret outside the demo.
ADMIN_TOTP_SECRET = "AURORADEMOSECRETJBSWY3DPEHPK3PXP"  # noqa: S105

# --- departments ----------------------------------------------------------------

EXECUTIVE = "Executive"
ENGINEERING = "Engineering"
SECURITY = "Security"
OPERATIONS = "Operations"
COMPLIANCE = "Compliance"
FINANCE = "Finance"
SUPPORT = "Customer Support"
TRADING = "Trading"
LEGAL = "Legal"
PEOPLE = "People"


# Letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSED = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "đ": "d"})


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED)).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in folded.lower() if c.isalnum() or c in " -").replace(" ", ".")


@dataclass(frozen=True)
class PersonSpec:
    external_id: str
    full_name: str
    department: str
    job_title: str
    manager: str | None  # external id
    start: str
    kind: str = "employee"
    status: str = "active"
    end: str | None = None
    key_function_holder: bool = False
    # Remote contractors and service accounts never enter the premises.
    badge: bool = True
    email_local: str | None = None
    # MFA at the firm's identity provider; service accounts authenticate otherwise.
    mfa: bool = True

    @property
    def mfa_enrolled(self) -> bool:
        return self.mfa and self.kind != "service_account"

    @property
    def email(self) -> str:
        return f"{self.email_local or _ascii(self.full_name)}@{DOMAIN}"

    @property
    def idp_id(self) -> str:
        # Shaped like an IdP's opaque user id, stable across rebuilds.
        return "00u" + hashlib.sha256(self.external_id.encode()).hexdigest()[:17]

    @property
    def badge_id(self) -> str | None:
        if not self.badge:
            return None
        return f"LUX-{10000 + int(self.external_id.split('-')[1]) * 7:05d}"

    @property
    def start_date(self) -> date:
        return date.fromisoformat(self.start)

    @property
    def end_date(self) -> date | None:
        return date.fromisoformat(self.end) if self.end else None


P = PersonSpec

PEOPLE_SPECS: list[PersonSpec] = [
    # Executive and key function holders
    P("AUR-001", "Luc Wagner", EXECUTIVE, "Chief Executive Officer", None, "2019-04-01", key_function_holder=True),
    P("AUR-002", "Inês Carvalho", EXECUTIVE, "Chief Operating Officer", "AUR-001", "2019-06-03",
      key_function_holder=True),
    P("AUR-003", "Chloé Lambert", EXECUTIVE, "Executive Assistant", "AUR-001", "2021-02-15"),
    # Engineering
    P("AUR-004", "Matthias Becker", ENGINEERING, "Chief Technology Officer", "AUR-001", "2019-05-02",
      key_function_holder=True),
    P("AUR-005", "Katarzyna Nowak", ENGINEERING, "Engineering Manager, Exchange Core", "AUR-004", "2020-01-06"),
    P("AUR-006", "Jonas Lindqvist", ENGINEERING, "Engineering Manager, Platform", "AUR-004", "2020-03-02"),
    P("AUR-007", "Marco Bianchi", ENGINEERING, "Senior Backend Engineer (matching engine)", "AUR-005", "2020-04-14"),
    P("AUR-008", "Lucía Fernández", ENGINEERING, "Backend Engineer", "AUR-005", "2021-09-01"),
    P("AUR-009", "Dimitris Georgiou", ENGINEERING, "Backend Engineer (ledger)", "AUR-005", "2022-01-10"),
    P("AUR-010", "Anna Schmidt", ENGINEERING, "Frontend Engineer", "AUR-005", "2021-05-17"),
    P("AUR-011", "Joost Janssen", ENGINEERING, "Frontend Engineer", "AUR-005", "2024-02-01", kind="contractor"),
    P("AUR-012", "Mihai Popescu", ENGINEERING, "Lead Site Reliability Engineer", "AUR-006", "2020-06-01"),
    P("AUR-013", "Eero Virtanen", ENGINEERING, "Site Reliability Engineer", "AUR-012", "2022-03-07"),
    P("AUR-014", "Tereza Dvořáková", ENGINEERING, "Site Reliability Engineer", "AUR-012", "2023-04-03"),
    P("AUR-015", "Pedro Santos", ENGINEERING, "Database Administrator", "AUR-006", "2020-11-02"),
    P("AUR-016", "Niamh O'Connor", ENGINEERING, "QA Engineer", "AUR-005", "2022-08-22"),
    P("AUR-017", "Florian Weber", ENGINEERING, "Wallet Engineer", "AUR-005", "2020-09-01"),
    P("AUR-018", "Camille Dubois", ENGINEERING, "Wallet Engineer", "AUR-005", "2023-01-09"),
    P("AUR-019", "Raphaël Martin", ENGINEERING, "Mobile Engineer", "AUR-005", "2024-06-03", kind="contractor",
      badge=False),
    P("AUR-020", "Ana Horvat", ENGINEERING, "Data Engineer", "AUR-006", "2023-09-18"),
    P("AUR-021", "Tom Hoffmann", ENGINEERING, "DevOps Engineer", "AUR-006", "2026-12-01", status="joiner",
      mfa=False),
    # Security
    P("AUR-022", "Aoife Byrne", SECURITY, "Chief Information Security Officer", "AUR-001", "2020-02-03",
      key_function_holder=True),
    P("AUR-023", "Kristóf Nagy", SECURITY, "Security Engineer", "AUR-022", "2021-03-01"),
    P("AUR-024", "Laura Rossi", SECURITY, "Security Operations Analyst", "AUR-022", "2022-05-02"),
    P("AUR-025", "Henrik Sørensen", SECURITY, "Identity and Access Management Engineer", "AUR-022", "2021-10-04"),
    P("AUR-026", "Paulina Wiśniewska", SECURITY, "Penetration Tester", "AUR-022", "2025-09-01", kind="contractor",
      badge=False, mfa=False),
    # Operations
    P("AUR-027", "Tomasz Kowalski", OPERATIONS, "Head of Operations", "AUR-002", "2019-09-02"),
    P("AUR-028", "Julie Schmit", OPERATIONS, "Office and Facilities Manager", "AUR-027", "2020-01-13"),
    P("AUR-029", "Ricardo Almeida", OPERATIONS, "IT Support Engineer", "AUR-027", "2021-01-04"),
    P("AUR-030", "Bram Peeters", OPERATIONS, "IT Support Engineer", "AUR-027", "2023-06-12"),
    P("AUR-031", "Hélène Fournier", OPERATIONS, "Treasury and Wallet Operations Lead", "AUR-027", "2020-05-04"),
    P("AUR-032", "Stefan Kraus", OPERATIONS, "Wallet Operations Specialist", "AUR-031", "2021-07-01"),
    P("AUR-033", "Maria Ionescu", OPERATIONS, "Wallet Operations Specialist", "AUR-031", "2022-10-03"),
    # Compliance
    P("AUR-034", "Sophie Muller", COMPLIANCE, "Head of Compliance", "AUR-001", "2019-07-01",
      key_function_holder=True),
    P("AUR-035", "Pieter de Vries", COMPLIANCE, "Money Laundering Reporting Officer", "AUR-001", "2020-02-17",
      key_function_holder=True),
    P("AUR-036", "Chiara Greco", COMPLIANCE, "Compliance Officer", "AUR-034", "2021-04-06"),
    P("AUR-037", "Javier López", COMPLIANCE, "KYC Analyst", "AUR-035", "2021-11-15"),
    P("AUR-038", "Agnieszka Zielińska", COMPLIANCE, "KYC Analyst", "AUR-035", "2023-02-01"),
    P("AUR-039", "Yannick Thill", COMPLIANCE, "KYC Analyst", "AUR-035", "2026-11-16", status="joiner"),
    P("AUR-040", "Eleni Nikolaou", COMPLIANCE, "Transaction Monitoring Analyst", "AUR-035", "2022-06-01"),
    # Finance
    P("AUR-041", "Giulia Romano", FINANCE, "Chief Financial Officer", "AUR-001", "2019-10-01",
      key_function_holder=True),
    P("AUR-042", "Mette Hansen", FINANCE, "Financial Controller", "AUR-041", "2020-08-03"),
    P("AUR-043", "Nuno Ferreira", FINANCE, "Accountant", "AUR-042", "2022-02-14"),
    P("AUR-044", "Lena Vogel", FINANCE, "Treasury Analyst", "AUR-041", "2023-05-02"),
    # Customer Support
    P("AUR-045", "Elena García", SUPPORT, "Head of Customer Support", "AUR-002", "2020-04-01"),
    P("AUR-046", "Kevin Reuter", SUPPORT, "Support Team Lead", "AUR-045", "2021-01-18"),
    P("AUR-047", "Sara Costa", SUPPORT, "Support Agent", "AUR-046", "2022-03-01"),
    P("AUR-048", "Jan Novák", SUPPORT, "Support Agent", "AUR-046", "2022-09-05"),
    P("AUR-049", "Emma Claes", SUPPORT, "Support Agent", "AUR-046", "2023-03-13", status="suspended"),
    P("AUR-050", "Luca Moretti", SUPPORT, "Support Agent", "AUR-046", "2025-01-06", kind="contractor"),
    P("AUR-051", "Zofia Lewandowska", SUPPORT, "Support Agent", "AUR-046", "2025-04-01", kind="contractor",
      badge=False),
    P("AUR-052", "Ciarán Walsh", SUPPORT, "Support Agent", "AUR-046", "2021-06-01", status="leaver",
      end="2026-09-30"),
    # Trading
    P("AUR-053", "Nikos Papadopoulos", TRADING, "Head of Trading", "AUR-002", "2019-11-04"),
    P("AUR-054", "Sébastien Girard", TRADING, "Market Operations Specialist", "AUR-053", "2021-02-01"),
    P("AUR-055", "Mathilde Klein", TRADING, "Market Operations Specialist", "AUR-053", "2022-07-11"),
    P("AUR-056", "Andreas Weiss", TRADING, "Market Risk Analyst", "AUR-053", "2021-09-13"),
    P("AUR-057", "Oskar Berg", TRADING, "Market Surveillance Analyst", "AUR-053", "2023-10-02"),
    # Legal and People
    P("AUR-058", "Claire Reding", LEGAL, "General Counsel", "AUR-001", "2020-03-16"),
    P("AUR-059", "Isabel Ruiz", PEOPLE, "People and Culture Manager", "AUR-002", "2020-06-15"),
    P("AUR-060", "Daan Bakker", LEGAL, "Legal Counsel", "AUR-058", "2022-01-03", status="leaver", end="2026-10-31"),
    # Service accounts: the manager is the person answerable for the account (§21).
    P("SVC-001", "CI deployment pipeline", ENGINEERING, "Service account", "AUR-012", "2021-02-01",
      kind="service_account", badge=False, email_local="svc-ci-deploy"),
    P("SVC-002", "Database backup job", ENGINEERING, "Service account", "AUR-015", "2021-03-15",
      kind="service_account", badge=False, email_local="svc-backup"),
    P("SVC-003", "KYC provider synchronisation", ENGINEERING, "Service account", "AUR-008", "2022-01-20",
      kind="service_account", badge=False, email_local="svc-kyc-sync"),
]

# --- premises and zones (§18-20) -------------------------------------------------


@dataclass(frozen=True)
class SiteSpec:
    external_id: str
    name: str
    kind: str
    address: str
    owner: str


@dataclass(frozen=True)
class ZoneSpec:
    external_id: str
    site: str
    name: str
    kind: str
    criticality: str
    owner: str


SITES: list[SiteSpec] = [
    SiteSpec("SITE-LUX", "Luxembourg head office", "office",
             "14 Rue Eugène Ruppert, 3rd floor, L-2453 Luxembourg", "AUR-027"),
    SiteSpec("SITE-DC1", "Bettembourg colocation data centre", "colocation",
             "Kirchberg Colocation S.A., Zone d'activités Krakelshaff, L-3290 Bettembourg", "AUR-006"),
]

ZONES: list[ZoneSpec] = [
    ZoneSpec("ZONE-LUX-RECEPTION", "SITE-LUX", "Reception", "reception", "other", "AUR-028"),
    ZoneSpec("ZONE-LUX-FLOOR", "SITE-LUX", "Office floor", "office_area", "important", "AUR-028"),
    ZoneSpec("ZONE-LUX-SERVER", "SITE-LUX", "Server room", "server_room", "critical", "AUR-027"),
    ZoneSpec("ZONE-LUX-SAFE", "SITE-LUX", "Safe room", "safe_room", "critical", "AUR-031"),
    ZoneSpec("ZONE-DC1-CAGE", "SITE-DC1", "Cage C-14", "cage", "critical", "AUR-012"),
    ZoneSpec("ZONE-DC1-COMMS", "SITE-DC1", "Comms room (meet-me room)", "comms_room", "important", "AUR-006"),
]

# --- ICT third-party service providers (§17 i-ii) ---------------------------------


@dataclass(frozen=True)
class ProviderSpec:
    external_id: str
    name: str
    lei_base: str
    services: str
    criticality: str
    contract_start: str
    contract_end: str
    exit_plan: str
    contact_email: str

    @property
    def lei(self) -> str:
        return with_check_digits(self.lei_base)


PROVIDERS: list[ProviderSpec] = [
    ProviderSpec(
        "PRV-CLOUD", "Nimbus Cloud Europe S.à r.l.", "222100NIMBUSCLD7EU",
        "Infrastructure as a service (compute, managed Kubernetes, object storage) in two EU regions; "
        "DNS and CDN; workspace suite (email, documents).",
        "critical", "2021-01-01", "2027-12-31",
        "Infrastructure is declared as code and deployable to a second cloud within 30 days; "
        "object storage is replicated nightly to the colocation site; email exported monthly. "
        "Exit tested once a year on the staging account.",
        "eu-enterprise@nimbus-cloud.example",
    ),
    ProviderSpec(
        "PRV-COLO", "Kirchberg Colocation S.A.", "222100KIRCHCOLO0LU",
        "Cage space, power, cooling, physical security, remote hands and cross-connects at Bettembourg.",
        "critical", "2020-06-01", "2028-05-31",
        "Twelve months' notice; equipment is owned by Aurora. A second colocation site has been "
        "surveyed (quote on file) and the move runbook is reviewed yearly.",
        "service-desk@kirchberg-colo.example",
    ),
    ProviderSpec(
        "PRV-KYC", "VeriKYC GmbH", "391200VERIKYC5DE01",
        "Identity verification, sanctions and PEP screening, Travel Rule messaging (API, SaaS).",
        "critical", "2022-01-01", "2026-12-31",
        "Customer data is exported daily to Aurora's database; an alternative provider has been "
        "pre-qualified and onboarding can fall back to manual review for up to two weeks.",
        "support@verikyc.example",
    ),
    ProviderSpec(
        "PRV-CUSTODY", "Vaultline Custody Technologies B.V.", "724500VAULTLNE3NL9",
        "Hardware security modules (two appliances), hardware support, MPC wallet signing software licence.",
        "critical", "2020-09-01", "2027-08-31",
        "Keys are generated in Aurora's HSMs and backed up as split shares held by Aurora's "
        "custodians; signing can be moved to another HSM vendor by restoring from backup under "
        "dual control. Software escrow agreement in place.",
        "custody-support@vaultline.example",
    ),
    ProviderSpec(
        "PRV-MARKET", "Tickstream Market Data Ltd", "635400TICKSTRM8IE2",
        "Reference prices and index feeds for listed crypto-assets.",
        "important", "2023-03-01", "2026-02-28",
        "Prices can be computed from Aurora's own order books and two public feeds; switching "
        "needs a configuration change only.",
        "feeds@tickstream.example",
    ),
]

# --- ICT assets (DORA Art. 3(7)) -----------------------------------------------------


@dataclass(frozen=True)
class AssetSpec:
    external_id: str
    name: str
    type: str
    criticality: str
    owner: str | None  # person external id
    business_function: str
    zone: str | None = None
    location: str = ""
    provider: str | None = None
    depends_on: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str = ""


TRADE = "Trade execution"
CUSTODY = "Custody of client crypto-assets"
ONBOARDING = "Client onboarding (KYC/AML)"
CLIENT_ACCESS = "Client access"
IAM = "Identity and access management"
SECOPS = "Security monitoring"
DELIVERY = "Software delivery"
CORPORATE = "Corporate IT"
RECOVERY = "Backup and recovery"
PHYSICAL = "Physical security"
FIN = "Finance and reporting"
PROD_REGION = "Nimbus eu-lux-1, production account"

A = AssetSpec

ASSETS: list[AssetSpec] = [
    # Trading venue
    A("AST-MATCH", "Matching engine", "application", "critical", "AUR-005", TRADE, zone="ZONE-DC1-CAGE",
      depends_on=("AST-DB-PROD", "AST-HOSTS-DC1"), tags=("exchange",),
      description="Central limit order books for all listed pairs."),
    A("AST-OGW", "Order gateway (FIX and REST)", "application", "critical", "AUR-007", TRADE, zone="ZONE-DC1-CAGE",
      depends_on=("AST-MATCH", "AST-RISK", "AST-FW-DC1"), tags=("exchange",)),
    A("AST-RISK", "Pre-trade risk engine", "application", "critical", "AUR-053", TRADE, zone="ZONE-DC1-CAGE",
      depends_on=("AST-DB-PROD", "AST-MKTDATA"), tags=("exchange",)),
    A("AST-LEDGER", "Client balances ledger", "application", "critical", "AUR-009", CUSTODY, zone="ZONE-DC1-CAGE",
      depends_on=("AST-DB-PROD",), description="Books every client balance movement; reconciled daily on-chain."),
    A("AST-DB-PROD", "Production database cluster (PostgreSQL)", "database", "critical", "AUR-015", TRADE,
      zone="ZONE-DC1-CAGE", depends_on=("AST-HOSTS-DC1",)),
    A("AST-HOSTS-DC1", "Bare-metal server fleet", "server", "critical", "AUR-012", TRADE, zone="ZONE-DC1-CAGE",
      depends_on=("AST-CORE-NET",), description="Twelve servers in two racks."),
    A("AST-MKTDATA", "Market data feed handler", "application", "important", "AUR-053", TRADE,
      zone="ZONE-DC1-CAGE", provider="PRV-MARKET"),
    A("AST-SURVEILLANCE", "Market abuse surveillance", "application", "important", "AUR-034", TRADE,
      location=PROD_REGION, provider="PRV-CLOUD", depends_on=("AST-DB-PROD", "AST-MKTDATA")),
    # Client access
    A("AST-API", "Customer API", "application", "critical", "AUR-005", CLIENT_ACCESS, location=PROD_REGION,
      provider="PRV-CLOUD", depends_on=("AST-OGW", "AST-LEDGER", "AST-CLOUD-PROD", "AST-DNS")),
    A("AST-WEB", "Website and web trading app", "application", "important", "AUR-010", CLIENT_ACCESS,
      location=PROD_REGION, provider="PRV-CLOUD", depends_on=("AST-API", "AST-DNS")),
    A("AST-DNS", "DNS and CDN", "saas", "important", "AUR-006", CLIENT_ACCESS, location="Nimbus global edge",
      provider="PRV-CLOUD"),
    A("AST-STATUS", "Public status page", "saas", "other", "AUR-012", CLIENT_ACCESS, location="SaaS (EU)"),
    A("AST-HELPDESK", "Customer support helpdesk", "saas", "important", "AUR-045", CLIENT_ACCESS,
      location="SaaS (EU)"),
    # Custody
    A("AST-HOT-WALLET", "Hot wallet", "wallet", "critical", "AUR-031", CUSTODY, zone="ZONE-DC1-CAGE",
      depends_on=("AST-SIGNER", "AST-HSM-1"), tags=("custody", "online"),
      description="Online wallet for withdrawals; holds under 2% of client assets."),
    A("AST-WARM-WALLET", "Warm wallet", "wallet", "critical", "AUR-031", CUSTODY, zone="ZONE-DC1-CAGE",
      depends_on=("AST-SIGNER", "AST-HSM-2"), tags=("custody",),
      description="Refills the hot wallet; every transfer needs two approvers."),
    A("AST-COLD-WALLET", "Cold wallet", "wallet", "critical", "AUR-031", CUSTODY, zone="ZONE-LUX-SAFE",
      depends_on=("AST-COLD-SIGNING", "AST-SEED-SHARES"), tags=("custody", "offline"),
      description="Offline multisignature wallet holding most client assets."),
    A("AST-COLD-SIGNING", "Air-gapped signing laptops", "endpoint", "critical", "AUR-031", CUSTODY,
      zone="ZONE-LUX-SAFE", tags=("custody", "offline")),
    A("AST-SEED-SHARES", "Cold wallet backup shares (steel plates)", "other", "critical", "AUR-022", CUSTODY,
      zone="ZONE-LUX-SAFE", tags=("custody", "key-backup"),
      description="Split backup of the cold wallet keys; each share held under seal by a different custodian."),
    A("AST-SIGNER", "Wallet signing service (MPC)", "application", "critical", "AUR-017", CUSTODY,
      zone="ZONE-DC1-CAGE", provider="PRV-CUSTODY", depends_on=("AST-HSM-1",)),
    A("AST-HSM-1", "HSM, primary", "hsm", "critical", "AUR-022", CUSTODY, zone="ZONE-DC1-CAGE",
      provider="PRV-CUSTODY", tags=("keys",)),
    A("AST-HSM-2", "HSM, secondary", "hsm", "critical", "AUR-022", CUSTODY, zone="ZONE-LUX-SERVER",
      provider="PRV-CUSTODY", tags=("keys",)),
    A("AST-PKI", "Internal certificate authority", "application", "critical", "AUR-023", IAM,
      zone="ZONE-DC1-CAGE", depends_on=("AST-HSM-1",), tags=("keys", "certificates")),
    # Onboarding and AML
    A("AST-KYC", "KYC and sanctions screening integration", "saas", "critical", "AUR-034", ONBOARDING,
      location="VeriKYC EU (Frankfurt)", provider="PRV-KYC", depends_on=("AST-API",)),
    A("AST-TXMON", "Blockchain transaction monitoring", "application", "important", "AUR-035", ONBOARDING,
      location=PROD_REGION, provider="PRV-CLOUD", depends_on=("AST-LEDGER",)),
    # Cloud and network
    A("AST-CLOUD-PROD", "Cloud account: production", "cloud_account", "critical", "AUR-006", TRADE,
      location=PROD_REGION, provider="PRV-CLOUD"),
    A("AST-CLOUD-STAGING", "Cloud account: staging", "cloud_account", "other", "AUR-006", DELIVERY,
      location="Nimbus eu-lux-1, staging account", provider="PRV-CLOUD"),
    A("AST-CLOUD-LOGGING", "Cloud account: logging and archive", "cloud_account", "important", "AUR-022", SECOPS,
      location="Nimbus eu-fra-2, logging account", provider="PRV-CLOUD"),
    A("AST-CORE-NET", "Core routers and internet transit", "network_device", "critical", "AUR-006", TRADE,
      zone="ZONE-DC1-COMMS", provider="PRV-COLO"),
    A("AST-FW-DC1", "Data centre firewall cluster", "network_device", "critical", "AUR-023", TRADE,
      zone="ZONE-DC1-COMMS", depends_on=("AST-CORE-NET",)),
    A("AST-VPN", "VPN gateway", "network_device", "critical", "AUR-012", IAM, zone="ZONE-DC1-COMMS",
      depends_on=("AST-IDP", "AST-FW-DC1")),
    A("AST-BASTION", "Bastion host (privileged access)", "server", "critical", "AUR-025", IAM,
      zone="ZONE-DC1-CAGE", depends_on=("AST-VPN", "AST-IDP"), tags=("privileged",)),
    A("AST-FW-LUX", "Office firewall", "network_device", "important", "AUR-029", CORPORATE,
      zone="ZONE-LUX-SERVER"),
    A("AST-OFFICE-NET", "Office switches and Wi-Fi", "network_device", "other", "AUR-029", CORPORATE,
      zone="ZONE-LUX-SERVER", depends_on=("AST-FW-LUX",)),
    # Identity, secrets, security monitoring
    A("AST-IDP", "Identity provider (single sign-on and MFA)", "application", "critical", "AUR-025", IAM,
      location=PROD_REGION, provider="PRV-CLOUD", depends_on=("AST-CLOUD-PROD",), tags=("privileged",)),
    A("AST-VAULT", "Secrets manager", "application", "critical", "AUR-023", IAM, location=PROD_REGION,
      provider="PRV-CLOUD", depends_on=("AST-CLOUD-PROD", "AST-HSM-1"), tags=("keys",)),
    A("AST-PASSWORDS", "Staff password manager", "saas", "important", "AUR-023", IAM, location="SaaS (EU)"),
    A("AST-PAW", "Privileged access workstations", "endpoint", "critical", "AUR-022", IAM, zone="ZONE-LUX-FLOOR",
      depends_on=("AST-MDM",), tags=("privileged",)),
    A("AST-SIEM", "SIEM", "application", "important", "AUR-022", SECOPS, location="Nimbus eu-fra-2, logging account",
      provider="PRV-CLOUD", depends_on=("AST-CLOUD-LOGGING",)),
    A("AST-MONITORING", "Infrastructure monitoring and alerting", "application", "important", "AUR-012", SECOPS,
      location=PROD_REGION, provider="PRV-CLOUD", depends_on=("AST-CLOUD-PROD",)),
    # Delivery
    A("AST-REPO", "Code repository", "application", "important", "AUR-004", DELIVERY,
      location="Nimbus eu-lux-1, tooling project", provider="PRV-CLOUD", depends_on=("AST-IDP",)),
    A("AST-CI", "CI/CD pipelines", "application", "important", "AUR-006", DELIVERY,
      location="Nimbus eu-lux-1, tooling project", provider="PRV-CLOUD", depends_on=("AST-REPO", "AST-VAULT")),
    # Backup
    A("AST-BACKUP", "Backup storage (encrypted, off-site)", "storage", "critical", "AUR-015", RECOVERY,
      location="Nimbus eu-fra-2, backup account", provider="PRV-CLOUD"),
    A("AST-OFFICE-NAS", "Office NAS (local backups)", "storage", "other", "AUR-029", RECOVERY,
      zone="ZONE-LUX-SERVER"),
    # Corporate IT
    A("AST-EMAIL", "Email and office suite", "saas", "important", "AUR-027", CORPORATE,
      location="Nimbus workspace (EU)", provider="PRV-CLOUD", depends_on=("AST-IDP",)),
    A("AST-LAPTOPS", "Staff laptops", "endpoint", "important", "AUR-029", CORPORATE, location="Office and remote",
      depends_on=("AST-MDM",), description="About 60 managed laptops with full-disk encryption."),
    A("AST-MDM", "Device management (MDM)", "saas", "important", "AUR-029", CORPORATE, location="SaaS (EU)",
      depends_on=("AST-IDP",)),
    A("AST-CHAT", "Team chat", "saas", "other", "AUR-029", CORPORATE, location="SaaS (EU)", depends_on=("AST-IDP",)),
    # Two registered gaps on purpose: ownerless low-criticality assets are what a real register has.
    A("AST-WIKI", "Internal wiki", "saas", "other", None, CORPORATE, location="SaaS (EU)"),
    A("AST-PRINTERS", "Office printers", "other", "other", None, CORPORATE, zone="ZONE-LUX-FLOOR"),
    A("AST-HRIS", "HR information system", "saas", "important", "AUR-059", CORPORATE, location="SaaS (EU)",
      description="Source of the people register."),
    A("AST-ERP", "Accounting and ERP", "saas", "important", "AUR-041", FIN, location="SaaS (EU)"),
    # Physical security of the office
    A("AST-BADGE", "Badge access control system", "application", "important", "AUR-028", PHYSICAL,
      zone="ZONE-LUX-SERVER", tags=("physical",), description="Records every entry to the office and its zones."),
    A("AST-CCTV", "CCTV recorder", "other", "important", "AUR-028", PHYSICAL, zone="ZONE-LUX-SERVER",
      tags=("physical",)),
]


@dataclass(frozen=True)
class DemoUser:
    email: str
    full_name: str
    role: str
    password: str
    totp_secret: str | None = None


USERS: list[DemoUser] = [
    DemoUser(ADMIN_EMAIL, ADMIN_NAME, "admin", ADMIN_PASSWORD, ADMIN_TOTP_SECRET),
    DemoUser(AUDITOR_EMAIL, AUDITOR_NAME, "auditor", AUDITOR_PASSWORD),
]
