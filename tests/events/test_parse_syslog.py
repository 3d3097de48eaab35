"""The syslog parser: headers (RFC 3164, RFC 5424, RFC 3339 stamps), malformed lines, year roll-over, messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcullis.core.errors import ValidationFailed
from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome
from portcullis.events.parsers.syslog import SyslogParser

SSHD_FAILED = "Failed password for root from 5.36.59.76 port 42393 ssh2"


def parse(line: str, **config: Any) -> Event:
    event = SyslogParser({"year": 2017, **config}).parse(line)
    assert event is not None
    return event


def reason(line: str, **config: Any) -> str:
    with pytest.raises(Malformed) as caught:
        SyslogParser({"year": 2017, **config}).parse(line)
    return caught.value.reason


# --- RFC 3164 headers -------------------------------------------------------------------------------


def test_rfc3164_header_fields() -> None:
    event = parse(f"Dec 10 07:13:56 LabSZ sshd[24227]: {SSHD_FAILED}\r\n")
    assert event.time == datetime(2017, 12, 10, 7, 13, 56, tzinfo=UTC)
    assert event.host == "LabSZ"
    assert event.kind == "authentication.login.failure"
    assert (event.actor, event.source_address, event.method, event.privileged) == (
        "root",
        "5.36.59.76",
        Method.PASSWORD,
        True,
    )


def test_rfc3164_with_priority_and_a_padded_day() -> None:
    event = parse(f"<38>Jul  1 04:05:19 combo sshd[1]: {SSHD_FAILED}")
    assert event.time == datetime(2017, 7, 1, 4, 5, 19, tzinfo=UTC)
    assert event.kind == "authentication.login.failure"


@pytest.mark.parametrize(
    ("line", "kind", "actor"),
    [
        ("Jul  3 04:08:03 combo syslogd 1.4.1: restart.", "other.message.unknown", ""),
        ("Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2", "authentication.login.success", "root"),
        ("Jul  1 04:05:19 combo logrotate: ALERT exited abnormally with [1]", "other.message.unknown", ""),
        ("Jul 27 14:41:57 combo kernel: Linux version 2.6.5-1.358 (gcc 3.3.3)", "other.kernel.unknown", ""),
        ("Jun 15 12:12:34 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)",
         "session.open.success", "cyrus"),
        ("Jul  7 08:06:12 combo gpm[2094]: *** info [mice.c(1766)]: ", "other.message.unknown", ""),
        ("Dec 10 06:55:46 LabSZ sshd[24200]:", "other.message.unknown", ""),
    ],
)  # fmt: skip
def test_rfc3164_tag_shapes(line: str, kind: str, actor: str) -> None:
    event = parse(line)
    assert (event.kind, event.actor, event.host) == (kind, actor, line.split()[3])


def test_timezone_is_applied_with_daylight_saving() -> None:
    winter = parse(f"Dec 10 06:55:46 h sshd[1]: {SSHD_FAILED}", timezone="Europe/Paris")
    summer = parse(f"Jul 10 06:55:46 h sshd[1]: {SSHD_FAILED}", timezone="Europe/Paris")
    assert winter.time == datetime(2017, 12, 10, 5, 55, 46, tzinfo=UTC)
    assert summer.time == datetime(2017, 7, 10, 4, 55, 46, tzinfo=UTC)


def test_the_same_stamp_in_two_years_is_two_times() -> None:
    parser = SyslogParser({"year": 2016})
    first = parser.parse(f"Dec 31 23:59:59 h sshd[1]: {SSHD_FAILED}")
    parser.parse(f"Jan  1 00:00:00 h sshd[1]: {SSHD_FAILED}")
    again = parser.parse(f"Dec 31 23:59:59 h sshd[1]: {SSHD_FAILED}")
    assert first is not None
    assert again is not None
    assert (first.time.year, again.time.year) == (2016, 2017)


def test_rfc3339_dated_line() -> None:
    event = parse(f"2024-05-01T12:00:00.250000+02:00 web1 sshd[9]: {SSHD_FAILED}")
    assert event.time == datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)
    assert (event.host, event.kind) == ("web1", "authentication.login.failure")
    assert parse(f"<86>2024-05-01T12:00:00Z web1 sshd[9]: {SSHD_FAILED}").time == datetime(2024, 5, 1, 12, tzinfo=UTC)


# --- year roll-over and state -----------------------------------------------------------------------


def test_year_rolls_over_and_survives_a_restart() -> None:
    parser = SyslogParser({"year": 2016})
    dec = parser.parse(f"Dec 31 23:59:58 h sshd[1]: {SSHD_FAILED}")
    assert dec is not None
    assert dec.time == datetime(2016, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert parser.state() == {"year": 2016, "last_month": 12}

    restarted = SyslogParser({"year": 2016}, parser.state())
    jan = restarted.parse(f"Jan  1 00:00:01 h sshd[1]: {SSHD_FAILED}")
    assert jan is not None
    assert jan.time == datetime(2017, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert restarted.state() == {"year": 2017, "last_month": 1}

    again = SyslogParser({"year": 2016}, restarted.state())
    feb = again.parse(f"Feb  2 10:00:00 h sshd[1]: {SSHD_FAILED}")
    assert feb is not None
    assert feb.time.year == 2017


def test_a_fresh_parser_without_state_keeps_the_configured_year() -> None:
    # Without the saved state the January line cannot know that December came before it.
    jan = SyslogParser({"year": 2016}).parse(f"Jan  1 00:00:01 h sshd[1]: {SSHD_FAILED}")
    assert jan is not None
    assert jan.time.year == 2016


@pytest.mark.parametrize(("before", "after"), [("Aug", "Jul"), ("Dec", "Jun"), ("Jan", "Dec"), ("Mar", "Mar")])
def test_no_roll_over_unless_the_month_goes_back_more_than_six(before: str, after: str) -> None:
    parser = SyslogParser({"year": 2016})
    parser.parse(f"{before}  1 00:00:00 h sshd[1]: {SSHD_FAILED}")
    event = parser.parse(f"{after}  2 00:00:00 h sshd[1]: {SSHD_FAILED}")
    assert event is not None
    assert event.time.year == 2016


def test_a_malformed_line_leaves_the_state_alone() -> None:
    parser = SyslogParser({"year": 2016})
    parser.parse(f"Dec 31 23:59:58 h sshd[1]: {SSHD_FAILED}")
    with pytest.raises(Malformed):
        parser.parse("Jan  1 00:00:01 h sshd[1")
    assert parser.state() == {"year": 2016, "last_month": 12}


def test_default_year_is_the_current_utc_year() -> None:
    event = SyslogParser({}).parse(f"Mar  3 03:03:03 h sshd[1]: {SSHD_FAILED}")
    assert event is not None
    assert event.time.year == datetime.now(UTC).year


@pytest.mark.parametrize(
    ("config", "state", "field"),
    [
        ({"year": "2017"}, None, "config.year"),
        ({"year": True}, None, "config.year"),
        ({"year": 0}, None, "config.year"),
        ({"timezone": "Mars/Olympus_Mons"}, None, "config.timezone"),
        ({"timezone": 5}, None, "config.timezone"),
        ({"year": 2017}, {"year": "x", "last_month": 1}, "state.year"),
        ({"year": 2017}, {"year": 2017, "last_month": 13}, "state.last_month"),
    ],
)
def test_unusable_configuration_or_state_is_refused(
    config: dict[str, Any], state: dict[str, Any] | None, field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        SyslogParser(config, state)
    assert [e.field for e in caught.value.errors] == [field]


# --- malformed lines --------------------------------------------------------------------------------


def test_empty_line() -> None:
    assert reason("") == "empty line"
    assert reason("  \r\n") == "empty line"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("Dec 99 06:55:46 LabSZ sshd[24200]: x", ["'Dec 99 06:55:46'", "day is out of range"]),
        ("Dec 10 25:55:46 LabSZ sshd[24200]: x", ["'Dec 10 25:55:46'", "hour"]),
        ("Dex 10 06:55:46 LabSZ sshd[24200]: x", ["'Dex'", "month"]),
        ("Dec 1x 06:55:46 LabSZ sshd[24200]: x", ["'Dec 1x 06:55:46'", "digits"]),
        ("Feb 29 06:55:46 LabSZ sshd[24200]: x", ["'Feb 29 06:55:46'", "day is out of range"]),
        ("Dec 10 06:5", ["cut", "'Dec 10 06:5'"]),
        ("Dec 10 06:55:46 LabSZ", ["cut", "'LabSZ'", "program tag"]),
        ("Dec 10 06:55:46 LabSZ sshd[242", ["program tag", "':'", "sshd[242"]),
        ("<999>Dec 10 06:55:46 LabSZ sshd[1]: x", ["priority", "<999>"]),
        ("<13", ["priority"]),
        ("<13>", ["cut after the priority"]),
        ("2024-13-01T00:00:00Z h sshd[1]: x", ["'2024-13-01T00:00:00Z'", "month"]),
        ("2024-05-01T00:00:00 h sshd[1]: x", ["no UTC offset"]),
        ("2024-05-01T00:00:00Z", ["cut", "no host"]),
    ],
)
def test_malformed_rfc3164_names_the_problem(line: str, words: list[str]) -> None:
    text = reason(line)
    for word in words:
        assert word in text, text


# --- RFC 5424 ---------------------------------------------------------------------------------------


def test_rfc5424_sshd_accepted_publickey() -> None:
    event = parse(
        "<38>1 2003-10-11T22:14:15.003Z mymachine.example.com sshd 4242 - - "
        "Accepted publickey for alice from 192.0.2.7 port 50022 ssh2: ED25519 SHA256:Zm9vYmFy"
    )
    assert event.time == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert event.kind == "authentication.login.success"
    assert (event.host, event.actor, event.actor_kind, event.source_address, event.method) == (
        "mymachine.example.com",
        "alice",
        ActorKind.USERNAME,
        "192.0.2.7",
        Method.PUBLICKEY,
    )
    assert event.detail == "ED25519 SHA256:Zm9vYmFy"
    assert not event.privileged


def test_rfc5424_sudo_with_structured_data_and_offset() -> None:
    event = parse(
        '<86>1 2024-03-05T09:01:02.5+01:00 web1 sudo - - [meta sequenceId="1" note="a \\"q\\" ]"][x@1 a="b"] '
        "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx"
    )
    assert event.time == datetime(2024, 3, 5, 8, 1, 2, 500000, tzinfo=UTC)
    assert event.kind == "privileged_action.sudo.success"
    assert (event.actor, event.target, event.detail, event.privileged) == (
        "alice",
        "root",
        "/usr/bin/systemctl restart nginx",
        True,
    )


def test_rfc5424_nil_fields_and_bom() -> None:
    event = parse("<34>1 2024-03-05T09:01:02Z - sshd - - - \ufeffInvalid user bob from 198.51.100.3")
    assert (event.kind, event.host, event.actor, event.source_address) == (
        "authentication.invalid_user.failure",
        "",
        "bob",
        "198.51.100.3",
    )


def test_rfc5424_without_message() -> None:
    event = parse('<34>1 2024-03-05T09:01:02Z h app - - [a b="c"]')
    assert (event.category, event.outcome, event.detail) == (Category.OTHER, Outcome.UNKNOWN, "")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("<34>2 2024-03-05T09:01:02Z h sshd - - - msg", ["version '2'"]),
        ("<34>1 2024-03-05T09:01:02Z h sshd - -", ["cut after the msgid"]),
        ("<34>1 2024-03-05T09:01:02Z h", ["cut after the hostname"]),
        ("<34>1 - h sshd - - - msg", ["timestamp is nil"]),
        ("<34>1 2024-03-05 h sshd - - - msg", ["'2024-03-05'", "does not parse"]),
        ('<34>1 2024-03-05T09:01:02Z h sshd - - [id a="b"', ["element opened at column 39", "']'"]),
        ('<34>1 2024-03-05T09:01:02Z h sshd - - [id a="b" msg', ["parameter at column 49", "lacks"]),
        ('<34>1 2024-03-05T09:01:02Z h sshd - - [id a="b msg', ["value opened at column", "'\"'"]),
        ("<34>1 2024-03-05T09:01:02Z h sshd - - [id a=b] msg", ["lacks '=\"value\"'"]),
        ('<34>1 2024-03-05T09:01:02Z h sshd - - [ a="b"] msg', ["element id", "empty"]),
        ('<34>1 2024-03-05T09:01:02Z h sshd - - [id a="b"]msg', ["ends at column", "instead of a space"]),
        ("<34>1 2024-03-05T09:01:02Z h sshd - - msg", ["neither '-' nor '['"]),
    ],
)
def test_malformed_rfc5424_names_the_problem(line: str, words: list[str]) -> None:
    text = reason(line)
    for word in words:
        assert word in text, text


# --- messages ---------------------------------------------------------------------------------------

# (program tag, message, kind, actor, target, source address, method, privileged, detail); each written from the
# message by hand.
CASES: list[tuple[str, str, str, str, str, str, Method, bool, str]] = [
    ("sshd[1]", "Accepted password for fztu from 119.137.62.142 port 49116 ssh2",
     "authentication.login.success", "fztu", "", "119.137.62.142", Method.PASSWORD, False, ""),
    ("sshd[1]", "Accepted keyboard-interactive/pam for root from 10.0.0.1 port 22 ssh2",
     "authentication.login.success", "root", "", "10.0.0.1", Method.KEYBOARD_INTERACTIVE, True, ""),
    ("sshd[1]", "Failed none for invalid user 0 from 5.188.10.180 port 49811 ssh2",
     "authentication.login.failure", "0", "", "5.188.10.180", Method.NONE, False, "invalid user"),
    ("sshd[1]", "Failed publickey for bob from 2001:db8::7 port 22 ssh2: RSA SHA256:x",
     "authentication.login.failure", "bob", "", "2001:db8::7", Method.PUBLICKEY, False, ""),
    ("sshd[1]", "Invalid user  0101 from 5.188.10.180",
     "authentication.invalid_user.failure", " 0101", "", "5.188.10.180", Method.UNKNOWN, False, ""),
    ("sshd[1]", "Invalid user admin from 5.188.10.180 port 4242",
     "authentication.invalid_user.failure", "admin", "", "5.188.10.180", Method.UNKNOWN, False, ""),
    ("sshd[1]", "input_userauth_request: invalid user webmaster [preauth]",
     "authentication.invalid_user.failure", "webmaster", "", "", Method.UNKNOWN, False, ""),
    ("sshd[1]", "pam_unix(sshd:auth): check pass; user unknown",
     "authentication.unknown_user.failure", "", "", "", Method.PASSWORD, False, ""),
    ("sshd[1]", "Disconnecting: Too many authentication failures for root [preauth]",
     "authentication.too_many_failures.failure", "root", "", "", Method.UNKNOWN, True, ""),
    ("sshd[1]", "Disconnecting invalid user test 1.2.3.4 port 22: Too many authentication failures [preauth]",
     "authentication.too_many_failures.failure", "test", "", "1.2.3.4", Method.UNKNOWN, False, ""),
    ("sshd[1]", "error: maximum authentication attempts exceeded for root from 1.2.3.4 port 22 ssh2 [preauth]",
     "authentication.too_many_failures.failure", "root", "", "1.2.3.4", Method.UNKNOWN, True, ""),
    ("sshd[1]", "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=bob",
     "authentication.too_many_failures.failure", "bob", "", "1.2.3.4", Method.PASSWORD, False, "2 more"),
    ("sshd[1]", "PAM service(sshd) ignoring max retries; 6 > 3",
     "authentication.too_many_failures.failure", "", "", "", Method.UNKNOWN, False,
     "service(sshd) ignoring max retries; 6 > 3"),
    ("sshd[1]", "message repeated 5 times: [ Failed password for root from 5.36.59.76 port 42393 ssh2]",
     "authentication.too_many_failures.failure", "root", "", "5.36.59.76", Method.PASSWORD, True,
     "repeated 5 times"),
    ("sshd[1]", "User carol from 10.1.1.1 not allowed because not listed in AllowUsers",
     "authentication.login.failure", "carol", "", "10.1.1.1", Method.UNKNOWN, False,
     "not allowed because not listed in AllowUsers"),
    ("sshd[1]", "pam_unix(sshd:session): session opened for user fztu by (uid=0)",
     "session.open.success", "fztu", "", "", Method.UNKNOWN, False, "by (uid=0)"),
    ("sshd[1]", "pam_unix(sshd:session): session closed for user root",
     "session.close.success", "root", "", "", Method.UNKNOWN, True, ""),
    ("sshd[1]", "Received disconnect from 119.137.62.142: 11: disconnected by user",
     "session.disconnect.unknown", "", "", "119.137.62.142", Method.UNKNOWN, False, "disconnected by user"),
    ("sshd[1]", "Received disconnect from 1.2.3.4 port 5555:11: Bye Bye [preauth]",
     "session.disconnect.unknown", "", "", "1.2.3.4", Method.UNKNOWN, False, "Bye Bye"),
    ("sshd[1]", "Connection closed by authenticating user root 1.2.3.4 port 22 [preauth]",
     "session.disconnect.unknown", "root", "", "1.2.3.4", Method.UNKNOWN, True, ""),
    ("sshd[1]", "Disconnected from user alice 10.0.0.9 port 50000",
     "session.disconnect.unknown", "alice", "", "10.0.0.9", Method.UNKNOWN, False, ""),
    ("sshd[1]", "Did not receive identification string from 123.235.32.19",
     "other.no_identification.unknown", "", "", "123.235.32.19", Method.UNKNOWN, False,
     "Did not receive identification string from 123.235.32.19"),
    ("sshd[1]", "Server listening on 0.0.0.0 port 22.",
     "other.message.unknown", "", "", "", Method.UNKNOWN, False, "Server listening on 0.0.0.0 port 22."),
    ("sshd-session[1]", "Accepted publickey for dave from 10.0.0.2 port 1 ssh2",
     "authentication.login.success", "dave", "", "10.0.0.2", Method.PUBLICKEY, False, ""),
    ("sudo", "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/cat /etc/shadow ; echo",
     "privileged_action.sudo.success", "alice", "root", "", Method.UNKNOWN, True, "/bin/cat /etc/shadow ; echo"),
    ("sudo", "bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/ls",
     "privileged_action.sudo.failure", "bob", "root", "", Method.UNKNOWN, True,
     "3 incorrect password attempts: /bin/ls"),
    ("sudo", "eve : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
     "privileged_action.sudo.failure", "eve", "root", "", Method.UNKNOWN, True, "user NOT in sudoers: /bin/sh"),
    ("sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
     "session.open.success", "root", "", "", Method.UNKNOWN, True, "by alice(uid=1000)"),
    ("sudo", "pam_unix(sudo:session): session closed for user postgres",
     "session.close.success", "postgres", "", "", Method.UNKNOWN, True, ""),
    ("sudo", "pam_unix(sudo:auth): authentication failure; logname=bob uid=1001 euid=0 tty=/dev/pts/1 ruser=bob"
     " rhost=  user=bob",
     "privileged_action.sudo.failure", "bob", "", "", Method.PASSWORD, True, ""),
    ("su[7]", "Successful su for root by alice",
     "privileged_action.su.success", "alice", "root", "", Method.UNKNOWN, True, ""),
    ("su[7]", "FAILED su for root by mallory",
     "privileged_action.su.failure", "mallory", "root", "", Method.UNKNOWN, True, ""),
    ("su[7]", "+ pts/0 alice:root",
     "privileged_action.su.success", "alice", "root", "", Method.UNKNOWN, True, "pts/0"),
    ("su[7]", "- pts/3 mallory:root",
     "privileged_action.su.failure", "mallory", "root", "", Method.UNKNOWN, True, "pts/3"),
    ("su[7]", "(to oracle) alice on pts/4",
     "privileged_action.su.success", "alice", "oracle", "", Method.UNKNOWN, True, "pts/4"),
    ("su[7]", "FAILED SU (to root) mallory on pts/5",
     "privileged_action.su.failure", "mallory", "root", "", Method.UNKNOWN, True, "pts/5"),
    ("su[7]", "pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/0 ruser=alice"
     " rhost=  user=root",
     "privileged_action.su.failure", "alice", "root", "", Method.PASSWORD, True, ""),
    ("su(pam_unix)[7]", "session closed for user news",
     "session.close.success", "news", "", "", Method.UNKNOWN, True, ""),
    ("login[9]", "ROOT LOGIN ON tty2 FROM console.example",
     "authentication.login.success", "root", "", "console.example", Method.UNKNOWN, True, "tty2"),
    ("login[9]", "LOGIN ON tty1 BY alice",
     "authentication.login.success", "alice", "", "", Method.UNKNOWN, False, "tty1"),
    ("login[9]", "FAILED LOGIN 1 FROM (null) FOR bob, Authentication failure",
     "authentication.login.failure", "bob", "", "", Method.UNKNOWN, False, "Authentication failure"),
    ("login(pam_unix)[9]", "session opened for user root by LOGIN(uid=0)",
     "session.open.success", "root", "", "", Method.UNKNOWN, True, "by LOGIN(uid=0)"),
    ("klogind[3]", "Authentication failed from 163.27.187.39 (163.27.187.39): Software caused connection abort",
     "authentication.login.failure", "", "", "163.27.187.39", Method.KERBEROS, False,
     "Software caused connection abort"),
    ("klogind[3]", "Kerberos authentication failed",
     "authentication.login.failure", "", "", "", Method.KERBEROS, False, ""),
    ("gdm-binary[2803]", "Couldn't authenticate user",
     "authentication.login.failure", "", "", "", Method.UNKNOWN, False, ""),
    ("gdm(pam_unix)[2803]", "authentication failure; logname= uid=0 euid=0 tty=:0 ruser= rhost= ",
     "authentication.login.failure", "", "", "", Method.PASSWORD, False, ""),
    ("ftpd[5]", "ANONYMOUS FTP LOGIN FROM 84.102.20.2,  (anonymous)",
     "authentication.login.success", "anonymous", "", "84.102.20.2", Method.UNKNOWN, False, "(anonymous)"),
    ("ftpd[5]", "FTP LOGIN FROM ws1.example [192.0.2.9], alice",
     "authentication.login.success", "alice", "", "192.0.2.9", Method.UNKNOWN, False, ""),
    ("ftpd[5]", "connection from 24.54.76.216 (24-54-76-216.bflony.adelphia.net) at Fri Jun 17 07:07:00 2005",
     "other.connection.unknown", "", "", "24.54.76.216", Method.UNKNOWN, False,
     "connection from 24.54.76.216 (24-54-76-216.bflony.adelphia.net) at Fri Jun 17 07:07:00 2005"),
    ("CRON[77]", "pam_unix(cron:session): session opened for user root by (uid=0)",
     "session.open.success", "root", "", "", Method.UNKNOWN, True, "by (uid=0)"),
    ("cups", "cupsd startup succeeded",
     "other.service.unknown", "", "", "", Method.UNKNOWN, False, "cupsd startup succeeded"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tag", "message", "kind", "actor", "target", "address", "method", "privileged", "detail"), CASES
)
def test_message_classification(
    tag: str,
    message: str,
    kind: str,
    actor: str,
    target: str,
    address: str,
    method: Method,
    privileged: bool,
    detail: str,
) -> None:
    event = parse(f"Mar  3 03:03:03 host1 {tag}: {message}")
    got = (event.kind, event.actor, event.target, event.source_address, event.method, event.privileged, event.detail)
    assert got == (kind, actor, target, address, method, privileged, detail)
    assert event.actor_kind is (ActorKind.USERNAME if actor else ActorKind.NONE)
    assert event.host == "host1"


def test_untagged_repeat_notice_of_sysklogd() -> None:
    event = parse("Jun 14 15:16:03 combo last message repeated 2 times")
    assert (event.kind, event.host, event.detail) == (
        "other.repeated.unknown",
        "combo",
        "last message repeated 2 times",
    )


# --- properties -------------------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_any_text_is_an_event_or_malformed(text: str) -> None:
    parser = SyslogParser({"year": 2017})
    event: Event | None = None
    reason = ""
    try:
        event = parser.parse(text)
    except Malformed as e:
        reason = e.reason
    if event is None:
        assert reason, "no event needs a reason"
    else:
        assert event.time.tzinfo is UTC


@given(
    st.datetimes(min_value=datetime(2017, 1, 1), max_value=datetime(2017, 12, 31, 23, 59, 59)),
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    st.sampled_from(["sshd", "su", "sudo", "login", "cron", "kernel", "sshd(pam_unix)"]),
    st.integers(min_value=1, max_value=4_194_304),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=80),
)
def test_a_well_formed_rfc3164_line_keeps_its_time_and_host(
    when: datetime, host: str, program: str, pid: int, message: str
) -> None:
    line = f"{when:%b} {when.day:2d} {when:%H:%M:%S} {host} {program}[{pid}]: {message}"
    event = SyslogParser({"year": 2017}).parse(line)
    assert event is not None
    assert (event.time, event.host) == (when.replace(microsecond=0, tzinfo=UTC), host)
