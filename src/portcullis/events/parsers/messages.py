"""What a program's log message means as an access event: sshd, PAM, sudo, su, login, klogind, gdm, ftpd.

Shared by the syslog and journald parsers, which only differ in how they find the
program, host, time and message. `classify` dispatches on the program name (a dict
look-up) and then on the message's first word before any regex runs, because most
lines of a busy host are a handful of sshd shapes.

Privileged (§22): every sudo and su event (the pipeline matches a privileged
action against a privileged entitlement), every su or sudo PAM session, and any
authentication or session event whose account is root, successful or not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from portcullis.events.parsers.base import ActorKind, Category, Event, Method, Outcome

AUTH = Category.AUTHENTICATION
SESSION = Category.SESSION
PRIV = Category.PRIVILEGED_ACTION
OTHER = Category.OTHER
OK = Outcome.SUCCESS
FAIL = Outcome.FAILURE
UNKNOWN = Outcome.UNKNOWN
USER = ActorKind.USERNAME
NOBODY = ActorKind.NONE

ROOT = "root"
DETAIL_MAX = 200

METHODS: dict[str, Method] = {
    "password": Method.PASSWORD,
    "publickey": Method.PUBLICKEY,
    "keyboard-interactive": Method.KEYBOARD_INTERACTIVE,
    "keyboard-interactive/pam": Method.KEYBOARD_INTERACTIVE,
    "none": Method.NONE,
    "gssapi-with-mic": Method.KERBEROS,
    "gssapi-keyex": Method.KERBEROS,
    "gssapi": Method.KERBEROS,
}

# Services whose PAM sessions and failures are a change of identity, hence privileged.
SU_SERVICES = frozenset({"su", "su-l"})
SUDO_SERVICES = frozenset({"sudo", "sudo-i"})

Handler = Callable[[str, datetime, str, str], Event]


def _who(actor: str) -> ActorKind:
    return USER if actor else NOBODY


def other(action: str, msg: str, time: datetime, host: str, address: str = "") -> Event:
    """A record understood but with no access meaning."""
    return Event(time, OTHER, action, UNKNOWN, "", NOBODY, "", host, address, Method.UNKNOWN, False, msg[:DETAIL_MAX])


def _auth(
    action: str,
    outcome: Outcome,
    actor: str,
    time: datetime,
    host: str,
    address: str = "",
    method: Method = Method.UNKNOWN,
    detail: str = "",
    privileged: bool = False,
) -> Event:
    return Event(
        time, AUTH, action, outcome, actor, _who(actor), "", host, address, method, privileged or actor == ROOT, detail
    )


def _field(body: str, key: str) -> str:
    """The value of `key` (" rhost=", " user=") in a PAM "k=v k=v" list, "" when absent or empty."""
    i = body.find(key)
    if i < 0:
        return ""
    i += len(key)
    j = body.find(" ", i)
    return body[i:] if j < 0 else body[i:j]


# --- PAM ------------------------------------------------------------------------------------------

_PAM_PREFIX = re.compile(r"pam_unix\(([^:)]*)(?::([^)]*))?\): ")
_SESSION_OPENED = re.compile(r"session opened for user (\S+?)(?:\(uid=\d+\))?(?: by (.*))?$")
_SESSION_CLOSED = re.compile(r"session closed for user (\S+?)(?:\(uid=\d+\))?$")
_MORE_FAILURES = re.compile(r"(?:PAM )?(\d+) more authentication failures?;")


def pam(body: str, time: datetime, host: str, service: str) -> Event:
    """A pam_unix message for `service`: from "svc(pam_unix)" tags or after "pam_unix(svc:type): "."""
    c = body[:1]
    if c == "a" and body.startswith("authentication failure;"):
        user = _field(body, " user=")
        rhost = _field(body, " rhost=")
        if service in SU_SERVICES:
            invoker = _field(body, " ruser=") or _field(body, "logname=")
            return Event(time, PRIV, "su", FAIL, invoker, _who(invoker), user, host, rhost, Method.PASSWORD, True)
        if service in SUDO_SERVICES:
            invoker = _field(body, " ruser=") or user
            return Event(time, PRIV, "sudo", FAIL, invoker, _who(invoker), "", host, rhost, Method.PASSWORD, True)
        return Event(
            time, AUTH, "login", FAIL, user, USER if user else NOBODY, "", host, rhost, Method.PASSWORD, user == ROOT
        )
    if c == "c" and body.startswith("check pass; user unknown"):
        return Event(time, AUTH, "unknown_user", FAIL, "", NOBODY, "", host, "", Method.PASSWORD, False)
    if c == "s":
        privileged = service in SU_SERVICES or service in SUDO_SERVICES
        m = _SESSION_OPENED.match(body)
        if m is not None:
            user = m.group(1)
            by = m.group(2) or ""
            return Event(
                time,
                SESSION,
                "open",
                OK,
                user,
                USER,
                "",
                host,
                "",
                Method.UNKNOWN,
                privileged or user == ROOT,
                f"by {by}" if by else "",
            )
        m = _SESSION_CLOSED.match(body)
        if m is not None:
            user = m.group(1)
            return Event(
                time, SESSION, "close", OK, user, USER, "", host, "", Method.UNKNOWN, privileged or user == ROOT
            )
        if body.startswith("service(") and "ignoring max retries" in body:
            return _auth("too_many_failures", FAIL, "", time, host, detail=body[:DETAIL_MAX])
    m = _MORE_FAILURES.match(body)
    if m is not None:
        user = _field(body, " user=")
        return _auth(
            "too_many_failures",
            FAIL,
            user,
            time,
            host,
            _field(body, " rhost="),
            Method.PASSWORD,
            f"{m.group(1)} more",
            service in SU_SERVICES or service in SUDO_SERVICES,
        )
    return other("pam", body, time, host)


def _pam_prefixed(msg: str, time: datetime, host: str, program: str) -> Event | None:
    """A message starting "pam_unix(svc:type): ", classified by its service; None when it does not."""
    m = _PAM_PREFIX.match(msg)
    if m is None:
        return None
    return pam(msg[m.end() :], time, host, m.group(1) or program)


# --- sshd -----------------------------------------------------------------------------------------

_ACCEPTED = re.compile(r"Accepted (\S+) for (.*?) from (\S+) port \d+(.*)$")
_FAILED = re.compile(r"Failed (\S+) for (invalid user )?(.*?) from (\S+) port \d+")
_INVALID = re.compile(r"Invalid user (.*?) from (\S+)(?: port \d+)?$")
_INPUT_INVALID = re.compile(r"input_userauth_request: invalid user (.*?)(?: \[preauth\])?$")
_RECEIVED_DISCONNECT = re.compile(r"Received disconnect from (\S+?)(?: port \d+)?: ?\d+: ")
PREAUTH = " [preauth]"
_CONNECTION_CLOSED = re.compile(
    r"Connection (?:closed|reset) by (?:(?:authenticating|invalid) user (.*?) )?(\S+)(?: port \d+)?(?: \[preauth\])?$"
)
_DISCONNECTED = re.compile(
    r"Disconnected from (?:(?:authenticating |invalid )?user (.*?) )?(\S+)(?: port \d+)?(?: \[preauth\])?$"
)
_TOO_MANY = re.compile(
    r"Disconnecting: Too many authentication failures(?: for (?:invalid user )?(.*?))?(?: \[preauth\])?$"
)
_TOO_MANY_NEW = re.compile(
    r"Disconnecting (?:(?:authenticating|invalid) )?user (.*?) (\S+) port \d+: Too many authentication failures"
)
_MAX_ATTEMPTS = re.compile(r"maximum authentication attempts exceeded for (?:invalid user )?(.*?) from (\S+) port \d+")
_NO_IDENT = re.compile(r"Did not receive identification string from (\S+)")
_REVERSE = re.compile(r"reverse mapping checking getaddrinfo for \S+ \[([^\]]+)\] failed")
_NOT_ALLOWED = re.compile(r"User (.*?) from (\S+) not allowed because (.*)$")
_CONNECTION_FROM = re.compile(r"Connection from (\S+) port \d+")
_UNABLE = re.compile(r"Unable to negotiate with (\S+)")


def _sshd_accepted(msg: str, time: datetime, host: str) -> Event | None:
    m = _ACCEPTED.match(msg)
    if m is None:
        return None
    method, user, address, rest = m.groups()
    # The key's fingerprint after "ssh2: " tells which key was used.
    detail = rest[rest.find(": ") + 2 :] if ": " in rest else ""
    return _auth("login", OK, user, time, host, address, METHODS.get(method, Method.UNKNOWN), detail)


def _sshd_failed(msg: str, time: datetime, host: str) -> Event | None:
    m = _FAILED.match(msg)
    if m is None:
        return None
    method, invalid, user, address = m.groups()
    return Event(
        time,
        AUTH,
        "login",
        FAIL,
        user,
        USER if user else NOBODY,
        "",
        host,
        address,
        METHODS.get(method, Method.UNKNOWN),
        user == ROOT,
        "invalid user" if invalid else "",
    )


def _sshd_invalid(msg: str, time: datetime, host: str) -> Event | None:
    m = _INVALID.match(msg)
    if m is None:
        return None
    user, address = m.groups()
    return Event(
        time, AUTH, "invalid_user", FAIL, user, USER if user else NOBODY, "", host, address, Method.UNKNOWN, False
    )


def _sshd_input(msg: str, time: datetime, host: str) -> Event | None:
    m = _INPUT_INVALID.match(msg)
    if m is None:
        return None
    user = m.group(1)
    return Event(time, AUTH, "invalid_user", FAIL, user, USER if user else NOBODY, "", host, "", Method.UNKNOWN, False)


def _disconnect(outcome: Outcome, actor: str, time: datetime, host: str, address: str, detail: str) -> Event:
    return Event(
        time,
        SESSION,
        "disconnect",
        outcome,
        actor,
        USER if actor else NOBODY,
        "",
        host,
        address,
        Method.UNKNOWN,
        actor == ROOT,
        detail,
    )


def _sshd_received(msg: str, time: datetime, host: str, outcome: Outcome = UNKNOWN) -> Event | None:
    m = _RECEIVED_DISCONNECT.match(msg)
    if m is None:
        return None
    reason = msg[m.end() :]
    if reason.endswith(PREAUTH):
        reason = reason[: -len(PREAUTH)]
    return _disconnect(outcome, "", time, host, m.group(1), reason[:DETAIL_MAX])


def _sshd_connection(msg: str, time: datetime, host: str) -> Event | None:
    m = _CONNECTION_CLOSED.match(msg)
    if m is not None:
        return _disconnect(UNKNOWN, m.group(1) or "", time, host, m.group(2), "")
    m = _CONNECTION_FROM.match(msg)
    if m is not None:
        return other("connection", msg, time, host, m.group(1))
    return None


def _sshd_disconnected(msg: str, time: datetime, host: str) -> Event | None:
    m = _DISCONNECTED.match(msg)
    if m is None:
        return None
    return _disconnect(UNKNOWN, m.group(1) or "", time, host, m.group(2), "")


def _sshd_disconnecting(msg: str, time: datetime, host: str) -> Event | None:
    m = _TOO_MANY.match(msg)
    if m is not None:
        return _auth("too_many_failures", FAIL, m.group(1) or "", time, host)
    m = _TOO_MANY_NEW.match(msg)
    if m is not None:
        return _auth("too_many_failures", FAIL, m.group(1), time, host, m.group(2))
    return None


def _sshd_error(msg: str, time: datetime, host: str) -> Event | None:
    body = msg[7:]
    # sshd logs a disconnect at error level only when its reason is not "by application": an abnormal end.
    if body.startswith("Received disconnect"):
        return _sshd_received(body, time, host, FAIL)
    m = _MAX_ATTEMPTS.match(body)
    if m is not None:
        return _auth("too_many_failures", FAIL, m.group(1), time, host, m.group(2))
    return other("error", body, time, host)


def _sshd_pam_upper(msg: str, time: datetime, host: str) -> Event | None:
    return pam(msg[4:], time, host, "sshd")


def _sshd_pam_lower(msg: str, time: datetime, host: str) -> Event | None:
    return _pam_prefixed(msg, time, host, "sshd")


def _sshd_pam_auth(msg: str, time: datetime, host: str) -> Event | None:
    return pam(msg[len(_SSHD_PAM_AUTH) + 1 :], time, host, "sshd")


def _sshd_pam_session(msg: str, time: datetime, host: str) -> Event | None:
    return pam(msg[len(_SSHD_PAM_SESSION) + 1 :], time, host, "sshd")


_SSHD_PAM_AUTH = "pam_unix(sshd:auth):"
_SSHD_PAM_SESSION = "pam_unix(sshd:session):"


def _sshd_did(msg: str, time: datetime, host: str) -> Event | None:
    m = _NO_IDENT.match(msg)
    return None if m is None else other("no_identification", msg, time, host, m.group(1))


def _sshd_reverse(msg: str, time: datetime, host: str) -> Event | None:
    m = _REVERSE.match(msg)
    return None if m is None else other("reverse_mapping_failed", msg, time, host, m.group(1))


def _sshd_user(msg: str, time: datetime, host: str) -> Event | None:
    m = _NOT_ALLOWED.match(msg)
    if m is None:
        return None
    return _auth("login", FAIL, m.group(1), time, host, m.group(2), detail=f"not allowed because {m.group(3)}")


def _sshd_fatal(msg: str, time: datetime, host: str) -> Event | None:
    return other("error", msg[7:], time, host)


def _sshd_unable(msg: str, time: datetime, host: str) -> Event | None:
    m = _UNABLE.match(msg)
    return None if m is None else other("negotiation_failed", msg, time, host, m.group(1))


_SSHD: dict[str, Callable[[str, datetime, str], Event | None]] = {
    "Accepted": _sshd_accepted,
    "Failed": _sshd_failed,
    "Invalid": _sshd_invalid,
    "input_userauth_request:": _sshd_input,
    "Received": _sshd_received,
    "Connection": _sshd_connection,
    "Disconnected": _sshd_disconnected,
    "Disconnecting:": _sshd_disconnecting,
    "Disconnecting": _sshd_disconnecting,
    "error:": _sshd_error,
    "fatal:": _sshd_fatal,
    "PAM": _sshd_pam_upper,
    "Did": _sshd_did,
    "reverse": _sshd_reverse,
    "User": _sshd_user,
    "Unable": _sshd_unable,
    _SSHD_PAM_AUTH: _sshd_pam_auth,
    _SSHD_PAM_SESSION: _sshd_pam_session,
}


def sshd(msg: str, time: datetime, host: str, service: str) -> Event:
    sp = msg.find(" ")
    word = msg[:sp] if sp > 0 else msg
    handler = _SSHD.get(word)
    if handler is None and word.startswith("pam_unix("):
        handler = _sshd_pam_lower
    if handler is not None:
        event = handler(msg, time, host)
        if event is not None:
            return event
    return other("message", msg, time, host)


# --- sudo, su, login ------------------------------------------------------------------------------


def sudo(msg: str, time: datetime, host: str, service: str) -> Event:
    body = msg.lstrip()
    if body.startswith("pam_unix("):
        event = _pam_prefixed(body, time, host, "sudo")
        if event is not None:
            return event
    colon = body.find(" : ")
    if colon <= 0 or " ; " not in body:
        return other("message", msg, time, host)
    user = body[:colon]
    rest = body[colon + 3 :]
    c = rest.find("COMMAND=")
    command = rest[c + 8 :] if c >= 0 else ""
    # The command may hold " ; " itself, so only what precedes it is split.
    reason = ""
    target = ""
    for part in (rest[:c] if c >= 0 else rest).split(" ; "):
        key, eq, value = part.partition("=")
        if not eq:
            # A failure puts its reason before the first KEY=value: "3 incorrect password attempts ; TTY=...".
            reason = reason or part.strip()
        elif key == "USER":
            target = value
    detail = f"{reason}: {command}" if reason and command else reason or command
    return Event(
        time,
        PRIV,
        "sudo",
        FAIL if reason else OK,
        user,
        USER,
        target,
        host,
        "",
        Method.UNKNOWN,
        True,
        detail[:DETAIL_MAX],
    )


_SU_FOR = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")
_SU_LOG = re.compile(r"([+-]) (\S+) (\S+?):(\S+)$")
_SU_TO = re.compile(r"(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)")


def su(msg: str, time: datetime, host: str, service: str) -> Event:
    c = msg[:1]
    if c == "p":
        event = _pam_prefixed(msg, time, host, "su")
        if event is not None:
            return event
    m = _SU_FOR.match(msg)
    if m is not None:
        outcome = OK if m.group(1) == "Successful" else FAIL
        return Event(time, PRIV, "su", outcome, m.group(3), USER, m.group(2), host, "", Method.UNKNOWN, True)
    if c in "+-":
        m = _SU_LOG.match(msg)
        if m is not None:
            outcome = OK if m.group(1) == "+" else FAIL
            return Event(
                time, PRIV, "su", outcome, m.group(3), USER, m.group(4), host, "", Method.UNKNOWN, True, m.group(2)
            )
    m = _SU_TO.match(msg)
    if m is not None:
        outcome = FAIL if m.group(1) else OK
        return Event(
            time, PRIV, "su", outcome, m.group(3), USER, m.group(2), host, "", Method.UNKNOWN, True, m.group(4)
        )
    return other("message", msg, time, host)


_ROOT_LOGIN = re.compile(r"ROOT LOGIN +ON (\S+)(?: FROM (\S+))?")
_LOGIN_BY = re.compile(r"LOGIN ON (\S+) BY (\S+)(?: FROM (\S+))?")
_LOGIN_FAILED = re.compile(r"FAILED LOGIN (?:\d+|SESSION) FROM (\S+) FOR (.*?), (.*)$")


def login(msg: str, time: datetime, host: str, service: str) -> Event:
    if msg.startswith("pam_unix("):
        event = _pam_prefixed(msg, time, host, "login")
        if event is not None:
            return event
    m = _ROOT_LOGIN.match(msg)
    if m is not None:
        return _auth("login", OK, ROOT, time, host, m.group(2) or "", detail=m.group(1), privileged=True)
    m = _LOGIN_BY.match(msg)
    if m is not None:
        return _auth("login", OK, m.group(2), time, host, m.group(3) or "", detail=m.group(1))
    m = _LOGIN_FAILED.match(msg)
    if m is not None:
        address = "" if m.group(1) == "(null)" else m.group(1)
        return _auth("login", FAIL, m.group(2), time, host, address, detail=m.group(3)[:DETAIL_MAX])
    return other("message", msg, time, host)


# --- klogind, gdm, ftpd ---------------------------------------------------------------------------

_KLOGIND_FAILED = re.compile(r"Authentication failed from (\S+) \(([^)]*)\): (.*)$")


def klogind(msg: str, time: datetime, host: str, service: str) -> Event:
    if msg.startswith("Kerberos authentication failed"):
        return _auth("login", FAIL, "", time, host, method=Method.KERBEROS)
    m = _KLOGIND_FAILED.match(msg)
    if m is not None:
        return _auth("login", FAIL, "", time, host, m.group(1), Method.KERBEROS, m.group(3)[:DETAIL_MAX])
    return other("message", msg, time, host)


def gdm(msg: str, time: datetime, host: str, service: str) -> Event:
    if msg.startswith("Couldn't authenticate user"):
        return _auth("login", FAIL, "", time, host)
    if msg.startswith("pam_unix("):
        event = _pam_prefixed(msg, time, host, "gdm")
        if event is not None:
            return event
    return other("message", msg, time, host)


_FTP_CONNECTION = re.compile(r"connection from (\S+)")
_FTP_ANONYMOUS = re.compile(r"ANONYMOUS FTP LOGIN FROM (\S+?)(?: \[([^\]]*)\])?, *(.*)$")
_FTP_LOGIN = re.compile(r"FTP LOGIN FROM (\S+?)(?: \[([^\]]*)\])?, *(.*)$")
_FTP_FAILED = re.compile(r"(?:FTP LOGIN FAILED|failed login) (?:FROM|from) (\S+?)(?: \[([^\]]*)\])?, *(.*)$")
_FTP_TIMEOUT = re.compile(r"User (\S+) timed out after \d+ seconds")


def ftpd(msg: str, time: datetime, host: str, service: str) -> Event:
    c = msg[:1]
    if c == "c":
        m = _FTP_CONNECTION.match(msg)
        if m is not None:
            return other("connection", msg, time, host, m.group(1))
    elif c == "A":
        m = _FTP_ANONYMOUS.match(msg)
        if m is not None:
            return _auth("login", OK, "anonymous", time, host, m.group(2) or m.group(1), detail=m.group(3))
    elif c == "U":
        m = _FTP_TIMEOUT.match(msg)
        if m is not None:
            return other("timeout", msg, time, host)
    elif c in "Ff":
        m = _FTP_FAILED.match(msg)
        if m is not None:
            return _auth("login", FAIL, m.group(3), time, host, m.group(2) or m.group(1))
        m = _FTP_LOGIN.match(msg)
        if m is not None:
            return _auth("login", OK, m.group(3), time, host, m.group(2) or m.group(1))
    return other("message", msg, time, host)


def kernel(msg: str, time: datetime, host: str, service: str) -> Event:
    return other("kernel", msg, time, host)


PROGRAMS: dict[str, Handler] = {
    "sshd": sshd,
    "sshd-session": sshd,
    "sshd-auth": sshd,
    "sudo": sudo,
    "su": su,
    "login": login,
    "klogind": klogind,
    "gdm": gdm,
    "gdm-binary": gdm,
    "gdm-password": gdm,
    "gdm-session-worker": gdm,
    "ftpd": ftpd,
    "in.ftpd": ftpd,
    "wu-ftpd": ftpd,
    "kernel": kernel,
}


# --- entry point ----------------------------------------------------------------------------------

_REPEATED = re.compile(r"message repeated (\d+) times: \[ ?(.*?)\]?$")


def classify(program: str, msg: str, time: datetime, host: str) -> Event:
    """The event in `msg` written by `program` ("sshd", or "sshd(pam_unix)" for PAM's old tag form)."""
    handler = PROGRAMS.get(program)
    if handler is not None:
        if msg.startswith("message repeated "):
            return _repeated(program, msg, time, host)
        return handler(msg, time, host, program)
    paren = program.find("(")
    if paren > 0 and program.startswith("(pam", paren):
        # "su(pam_unix)": the message is PAM's, for the service before the parenthesis.
        return pam(msg, time, host, program[:paren])
    if msg.startswith("message repeated "):
        return _repeated(program, msg, time, host)
    if msg.startswith("pam_unix("):
        event = _pam_prefixed(msg, time, host, program)
        if event is not None:
            return event
    if msg.startswith(("last message repeated ", "--- last message repeated ")):
        # The repeated line is not in the record; what it meant cannot be known here.
        return other("repeated", msg, time, host)
    if msg.startswith("ROOT LOGIN"):
        # login(1) on some systems logs under an ident like "-- root".
        return login(msg, time, host, program)
    if msg.endswith((" startup succeeded", " shutdown succeeded")):
        return other("service", msg, time, host)
    return other("message", msg, time, host)


def _repeated(program: str, msg: str, time: datetime, host: str) -> Event:
    """rsyslog's "message repeated N times: [ msg]": N copies; N authentication failures are too many."""
    m = _REPEATED.match(msg)
    if m is None:
        return other("repeated", msg, time, host)
    inner = classify(program, m.group(2), time, host)
    note = f"repeated {m.group(1)} times"
    if inner.category is AUTH and inner.outcome is FAIL:
        inner.action = "too_many_failures"
    inner.detail = f"{note}: {inner.detail}" if inner.detail else note
    return inner
