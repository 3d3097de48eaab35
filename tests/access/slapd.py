"""A real OpenLDAP server for the reconciliation tests, started per test in tmp_path.

Import the fixtures explicitly: `from tests.access.slapd import slapd_server  # noqa: F401`;
tests then ask for `slapd` (or `slapd_memberof`).
The directory is loaded and changed with the OpenLDAP command-line tools
(ldapadd, ldapmodify, ldapdelete), not with ldap3, so that what the code under
test reads was put there by something independent of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, need

SLAPD = Path("/usr/sbin/slapd")
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
SUFFIX = "dc=aurora,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "slapd-root-Secret-4711"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


def user_ldif(uid: str, mail: str | None, employee_number: str | None, *, locked: bool = False) -> str:
    lines = [
        f"dn: {user_dn(uid)}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        f"cn: {uid.title()}",
        f"sn: {uid.title()}",
    ]
    if mail:
        lines.append(f"mail: {mail}")
    if employee_number:
        lines.append(f"employeeNumber: {employee_number}")
    if locked:
        lines.append("pwdAccountLockedTime: 000001010000Z")
    return "\n".join(lines) + "\n"


def group_ldif(cn: str, member_uids: list[str]) -> str:
    lines = [f"dn: {group_dn(cn)}", "objectClass: groupOfNames", f"cn: {cn}"]
    # groupOfNames needs a member; an empty group holds the root DN, which is no account.
    lines += [f"member: {user_dn(u)}" for u in member_uids] or [f"member: {ROOT_DN}"]
    return "\n".join(lines) + "\n"


def posix_group_ldif(cn: str, gid: int, member_uids: list[str]) -> str:
    lines = [f"dn: {group_dn(cn)}", "objectClass: posixGroup", f"cn: {cn}", f"gidNumber: {gid}"]
    lines += [f"memberUid: {u}" for u in member_uids]
    return "\n".join(lines) + "\n"


BASE_LDIF = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Aurora Digital Assets
dc: aurora

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {GROUPS}
objectClass: organizationalUnit
ou: groups
"""


@dataclass
class Slapd:
    url: str
    root: Path
    process: subprocess.Popen[bytes]

    bind_dn: str = ROOT_DN
    password: str = ROOT_PW
    base: str = SUFFIX

    def _tool(self, tool: str, *args: str, stdin: str | None = None) -> str:
        cmd = [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW, *args]
        done = subprocess.run(cmd, input=(stdin or "").encode(), capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def add(self, ldif: str) -> None:
        self._tool("ldapadd", stdin=ldif)

    def modify(self, ldif: str) -> None:
        self._tool("ldapmodify", stdin=ldif)

    def delete(self, dn: str) -> None:
        self._tool("ldapdelete", dn)

    def add_member(self, group: str, uid: str) -> None:
        self.modify(f"dn: {group_dn(group)}\nchangetype: modify\nadd: member\nmember: {user_dn(uid)}\n")

    def lock(self, uid: str) -> None:
        self.modify(
            f"dn: {user_dn(uid)}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
        )

    def search(self, flt: str, *attrs: str) -> str:
        return self._tool("ldapsearch", "-LLL", "-b", SUFFIX, flt, *attrs)


def _config(root: Path, memberof: bool) -> Path:
    overlays = ["memberof", "ppolicy"] if memberof else ["ppolicy"]
    conf = root / "slapd.conf"
    lines = [
        *(f"include {SCHEMA / s}.schema" for s in ("core", "cosine", "nis", "inetorgperson")),
        f"modulepath {MODULES}",
        "moduleload back_mdb",
        *(f"moduleload {o}" for o in overlays),
        f"pidfile {root / 'slapd.pid'}",
        f"argsfile {root / 'slapd.args'}",
        "database mdb",
        "maxsize 10485760",
        f'suffix "{SUFFIX}"',
        f'rootdn "{ROOT_DN}"',
        f"rootpw {ROOT_PW}",
        f"directory {root / 'data'}",
        # ppolicy brings pwdAccountLockedTime, how OpenLDAP marks a locked account.
        *(f"overlay {o}" for o in overlays),
    ]
    (root / "data").mkdir(parents=True)
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    done = subprocess.run(
        ["ldapsearch", "-x", "-H", url, "-s", "base", "-b", "", "(objectClass=*)", "namingContexts"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0 and process.poll() is None


def start_slapd(root: Path, *, memberof: bool = False) -> Slapd:
    if not SLAPD.exists() or shutil.which("ldapadd") is None:
        need("OpenLDAP (slapd, ldap-utils) is not installed: apt-get install slapd ldap-utils")
    conf = _config(root, memberof)
    last = ""
    for _ in range(3):  # the free port can be taken between choosing and binding it
        url = f"ldap://127.0.0.1:{free_port()}/"
        with (root / "slapd.log").open("wb") as log:
            process = subprocess.Popen(
                [str(SLAPD), "-h", url, "-f", str(conf), "-d", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LANG": "C"},
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(url, process):
                server = Slapd(url, root, process)
                server.add(BASE_LDIF)
                return server
            time.sleep(0.05)
        stop(process)
        last = (root / "slapd.log").read_text(errors="replace")[-2000:]
    raise AssertionError(f"slapd did not start: {last}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(name="slapd")
def slapd_server(tmp_path: Path) -> Iterator[Slapd]:
    """A running slapd with the suffix and the people and groups units, empty otherwise."""
    server = start_slapd(tmp_path / "slapd")
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture(name="slapd_memberof")
def slapd_memberof_server(tmp_path: Path) -> Iterator[Slapd]:
    """As `slapd`, with the memberof overlay keeping memberOf on the users."""
    server = start_slapd(tmp_path / "slapd-memberof", memberof=True)
    try:
        yield server
    finally:
        stop(server.process)
