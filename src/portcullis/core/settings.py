"""Runtime configuration, read from PORTCULLIS_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTCULLIS_", extra="ignore")

    data_dir: Path = Path("var")
    # Empty means the embedded SQLite database inside data_dir.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # How others reach this Portcullis (behind a proxy, its public name): CRL URLs in certificates point here.
    public_url: str = ""
    # Cookies are marked Secure; browsers accept that on http://localhost and
    # 127.0.0.1, so this only needs turning off behind odd reverse proxies.
    cookie_secure: bool = True
    session_hours: int = Field(default=8, ge=1, le=24 * 7)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    # Key names and checkpoint origins start with this; make it the firm's own
    # domain so that an auditor's verifier key names who signed.
    ledger_origin: str = "portcullis.local"
    # The checkpoint-signing key; kept apart from the database on purpose, so
    # that someone who can rewrite the database cannot re-sign it.
    ledger_key_file: Path | None = None
    # Where the key service's master key comes from: "file" (master_key_file, created at first use; for a
    # demo or a single operator) or "shares" (SLIP-39 shares entered by custodians after each start).
    master_key_source: Literal["file", "shares"] = "file"
    master_key_file: Path | None = None
    # The PKCS#11 backend (an HSM, or SoftHSM2): off while pkcs11_token is empty. The PIN is read from the
    # environment or a secrets file, never from a command line, and never logged.
    pkcs11_module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    pkcs11_token: str = ""
    pkcs11_pin: SecretStr = SecretStr("")
    checkpoint_every: int = Field(default=1000, ge=1)
    # Certificate expiry notices (§30): an SMTP relay and/or a webhook; neither set means findings only.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "portcullis@localhost"
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    cert_notify_to: str = ""  # comma-separated addresses told besides each certificate's owner
    cert_webhook_url: str = ""
    cert_webhook_secret: SecretStr = SecretStr("")
    # ACME http-01 challenges are answered on this address (port 80 behind the firm's name, or a forwarded port).
    acme_http_host: str = "0.0.0.0"  # noqa: S104 - the ACME server must reach it
    acme_http_port: int = 80
    # `portcullis serve` runs the scheduler (checkpoints, purges ...) this often; 0: leave it to `portcullis tick`.
    tick_seconds: int = Field(default=900, ge=0)
    # Accept Microsoft Entra's known SCIM deviations (capitalised PATCH ops, booleans as strings, paths as keys).
    scim_entra_compat: bool = False

    @property
    def effective_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def effective_ledger_key_file(self) -> Path:
        return self.ledger_key_file or self.data_dir / "ledger-signing.key"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'portcullis.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
