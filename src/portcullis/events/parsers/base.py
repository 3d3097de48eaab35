"""What every parser gives back: one normalised access event per raw record.

A parser turns the text of one raw record (a log line, one CloudTrail record,
one CSV row) into an `Event`, or raises `Malformed` with the reason; the
ingestion pipeline then quarantines the record with that reason and its
position. Nothing here touches the database: identity resolution (username,
badge id or identity-provider id to a person) and the target's id happen in the
pipeline, from what the event says it saw (`actor`, `actor_kind`, `target`).

Parsers are plain objects built from the source's configuration and a state
dict (e.g. the year an RFC 3164 timestamp belongs to, a CSV header). The state
is saved with the cursor in the same transaction as the records it produced, so
ingestion resumes exactly after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from portcullis.core.errors import FieldError, ValidationFailed


class Category(StrEnum):
    AUTHENTICATION = "authentication"
    PHYSICAL_ENTRY = "physical_entry"
    PRIVILEGED_ACTION = "privileged_action"
    SESSION = "session"
    # Understood, kept in the ledger, but not an access event (a kernel message, a cron job).
    OTHER = "other"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class ActorKind(StrEnum):
    USERNAME = "username"  # an account name on the target (sshd, su, sudo)
    BADGE = "badge"  # a badge or prox-card id (readers)
    IDP = "idp"  # an identity provider's user id (Keycloak, CloudTrail principal)
    NONE = "none"  # nobody named (a scanner that never sent a user name)


class Method(StrEnum):
    PASSWORD = "password"  # noqa: S105 - the method's name, not a secret
    PUBLICKEY = "publickey"
    KEYBOARD_INTERACTIVE = "keyboard-interactive"
    MFA = "mfa"
    BADGE = "badge"
    KERBEROS = "kerberos"
    NONE = "none"  # "Failed none for ..." : the client offered nothing
    UNKNOWN = ""


class Malformed(ValueError):
    """The record cannot be understood; `reason` says why, in words an operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Event:
    """One access event as the source saw it, times in UTC."""

    time: datetime
    category: Category
    action: str  # a short verb from the parser's vocabulary: login, logout, entry, sudo, su, invalid_user ...
    outcome: Outcome
    actor: str = ""  # as seen in the record
    actor_kind: ActorKind = ActorKind.USERNAME
    target: str = ""  # as seen: a zone's external id for badge readers, a resource name, else ""
    host: str = ""  # the host that wrote the record, when the record says
    source_address: str = ""  # where the access came from (client IP or host name)
    method: Method = Method.UNKNOWN
    privileged: bool = False
    detail: str = ""  # a short human-readable remainder (the sudo command, the API call)

    @property
    def kind(self) -> str:
        """The classification the template tests compare: category.action.outcome."""
        return f"{self.category.value}.{self.action}.{self.outcome.value}"


class Parser(Protocol):
    """One module per format implements this."""

    # The format's name as sources are configured with it, e.g. "openssh-syslog".
    name: ClassVar[str]
    # How raw records are cut out of a file: "lines" (one per line) or "json-records"
    # (a JSON document holding a "Records" array, as CloudTrail writes, or one JSON value per line).
    framing: ClassVar[str]

    def parse(self, raw: str) -> Event | None:
        """The event in one raw record; None for a record that carries no event by design
        (a CSV header, a blank line); raises Malformed for one that cannot be understood."""
        ...

    def state(self) -> dict[str, Any]:
        """What must survive a restart, JSON-serialisable (empty for most formats)."""
        ...


def config_error(field: str, message: str) -> ValidationFailed:
    """A source configuration the parser cannot work with (raised at construction, never per record)."""
    return ValidationFailed("The event source's configuration is not usable", [FieldError(f"config.{field}", message)])
