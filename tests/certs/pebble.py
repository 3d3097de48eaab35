"""A real ACME server for the certificate tests: Debian's Pebble with pebble-challtestsrv as its DNS.

Import the fixture explicitly: `from tests.certs.pebble import pebble_server  # noqa: F401`; tests then ask
for `pebble`. Every name resolves to 127.0.0.1 through pebble-challtestsrv, so Pebble's http-01 validation
reaches an Http01Responder listening on 127.0.0.1:`http_port`. Pebble's own TLS listener gets a certificate
made here by a throwaway CA (`ca_bundle`); the CA that signs what Pebble issues is made by Pebble at start
and is fetched from its management interface (`root_pem`, `intermediate_pem`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.certs.pki import localhost_tls
from tests.conftest import free_port, need

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"


@dataclass
class Pebble:
    directory_url: str
    ca_bundle: str  # the CA of Pebble's HTTPS listeners (ACME and management)
    management_url: str
    http_port: int  # where Pebble sends http-01 validation requests
    challtestsrv_url: str  # pebble-challtestsrv's management interface (plain HTTP)
    root: Path
    processes: tuple[subprocess.Popen[bytes], ...]

    def _get(self, path: str) -> bytes:
        context = ssl.create_default_context(cafile=self.ca_bundle)
        reply = httpx.get(self.management_url + path, verify=context, timeout=10)
        reply.raise_for_status()
        return reply.content

    def root_pem(self) -> bytes:
        return self._get("/roots/0")

    def intermediate_pem(self) -> bytes:
        return self._get("/intermediates/0")

    def cert_status(self, serial: int) -> dict[str, Any]:
        """Pebble's view of a certificate: {"Status": "Valid"|"Revoked", "Reason": ..., ...}."""
        status: dict[str, Any] = json.loads(self._get(f"/cert-status-by-serial/{serial:x}"))
        return status

    def add_a(self, host: str, address: str) -> None:
        """Make `host` resolve to `address` instead of the default 127.0.0.1."""
        body = {"host": host.rstrip(".") + ".", "addresses": [address]}
        httpx.post(self.challtestsrv_url + "/add-a", json=body, timeout=10).raise_for_status()

    def log(self) -> str:
        return (self.root / "pebble.log").read_text(errors="replace")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(ports: list[int], processes: list[subprocess.Popen[bytes]], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        if all(_listening(port) for port in ports):
            return True
        time.sleep(0.05)
    return False


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_pebble(root: Path, *, nonce_reject: int | None = None) -> Pebble:
    """Start pebble-challtestsrv and pebble in `root`; `nonce_reject` is PEBBLE_WFE_NONCEREJECT (default 5%)."""
    if not (shutil.which(PEBBLE) and shutil.which(CHALLTESTSRV)):
        need("pebble not installed: apt-get install pebble")
    root.mkdir(parents=True, exist_ok=True)
    ca, cert, key = localhost_tls(root)
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1"}
    if nonce_reject is not None:
        env["PEBBLE_WFE_NONCEREJECT"] = str(nonce_reject)
    last = ""
    for _ in range(3):  # a free port can be taken between choosing and binding it
        acme, management, http01, tls, dns, cts = (free_port() for _ in range(6))
        config = root / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"127.0.0.1:{acme}",
                        "managementListenAddress": f"127.0.0.1:{management}",
                        "certificate": str(cert),
                        "privateKey": str(key),
                        "httpPort": http01,
                        "tlsPort": tls,
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        # Only challtestsrv's DNS: A queries answer 127.0.0.1, AAAA nothing, so validation uses IPv4.
        dns_only = ["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", f"127.0.0.1:{dns}"]
        no_challenges = ["-http01", "", "-https01", "", "-tlsalpn01", ""]
        processes: list[subprocess.Popen[bytes]] = []
        with (root / "challtestsrv.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [CHALLTESTSRV, *dns_only, *no_challenges, "-management", f"127.0.0.1:{cts}"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=root,
                )
            )
        with (root / "pebble.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [PEBBLE, "-config", str(config), "-dnsserver", f"127.0.0.1:{dns}"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=root,
                    env=env,
                )
            )
        if _wait([cts, acme, management], processes):
            return Pebble(
                directory_url=f"https://127.0.0.1:{acme}/dir",
                ca_bundle=str(ca),
                management_url=f"https://127.0.0.1:{management}",
                http_port=http01,
                challtestsrv_url=f"http://127.0.0.1:{cts}",
                root=root,
                processes=tuple(processes),
            )
        for process in processes:
            stop(process)
        last = (root / "pebble.log").read_text(errors="replace")[-1500:]
        last += (root / "challtestsrv.log").read_text(errors="replace")[-500:]
    raise AssertionError(f"pebble did not start: {last}")


@pytest.fixture(name="pebble", scope="module")
def pebble_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A running Pebble (default 5% nonce rejection) and its DNS, shared by a test module."""
    server = start_pebble(tmp_path_factory.mktemp("pebble"))
    try:
        yield server
    finally:
        for process in reversed(server.processes):
            stop(process)
