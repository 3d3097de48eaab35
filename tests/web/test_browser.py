"""The pages in a real browser: Debian's Chromium driven by Playwright, against uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import uvicorn

from portcullis.app import create_app
from portcullis.core.clock import SystemClock
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn, ProviderIn
from tests.conftest import free_port, need
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parents[2] / "test-results"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Live:
    url: str
    rt: Runtime


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    if not CHROMIUM.exists():
        need(f"Debian's chromium at {CHROMIUM}")
    # TOTP codes are checked against real time here, so the server runs on the system clock.
    rt = Runtime.build(settings, SystemClock())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", rt)
    server.should_exit = True
    thread.join(10)
    rt.engine.dispose()


@pytest.fixture
def page(live: Live) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 1000})
        yield context.new_page()
        context.close()
        browser.close()


def _enrol_admin(page: object, live: Live) -> pyotp.TOTP:
    """First login of an admin: password, then TOTP enrolment from the page's own URI."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    make_user(live.rt, Role.ADMIN, enrol_mfa=False)
    page.goto(live.url + "/assets")
    expect(page).to_have_url(live.url + "/login?next=/assets")
    page.fill("#f-email", "admin@example.eu")
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]:has-text('Continue')")
    expect(page.locator("h1")).to_have_text("Set up two-factor authentication")
    expect(page.locator("figure.qr img")).to_be_visible()
    uri = page.locator("#otpauth-uri").inner_text()
    totp = pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0])
    page.fill("#f-code", totp.now())
    page.click("button:has-text('Confirm and continue')")
    expect(page).to_have_url(live.url + "/assets")
    expect(page.locator(".flash")).to_contain_text("Two-factor authentication is now active")
    return totp


def _demo_data(rt: Runtime) -> None:
    today = date.today()
    with rt.work(Principal.system("tests")) as ctx:
        ada = inventory.create_person(
            ctx, PersonIn(external_id="E-1", email="ada@firm.eu", full_name="Ada Lovelace", status="active")
        )
        inventory.create_person(
            ctx,
            PersonIn(external_id="E-2", email="bob@firm.eu", full_name="Bob Leaver", status="leaver",
                     end_date=today - timedelta(days=3)),
        )
        inventory.create_provider(
            ctx,
            ProviderIn(external_id="P-1", name="Cloud Hosting GmbH", criticality="critical",
                       contract_end=today + timedelta(days=45)),
        )
        inventory.create_asset(
            ctx, AssetIn(external_id="A-1", name="Hot wallet", type="wallet", criticality="critical", owner_id=ada.id)
        )
    make_user(rt, Role.SECURITY_OFFICER, enrol_mfa=False)


def test_login_with_password_and_totp(page: object, live: Live) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    _demo_data(live.rt)
    totp = _enrol_admin(page, live)

    page.click("button:has-text('Log out')")
    expect(page).to_have_url(live.url + "/login")
    page.fill("#f-email", "admin@example.eu")
    page.fill("#f-password", PASSWORD)
    page.click("button:has-text('Continue')")
    expect(page.locator("h1")).to_have_text("Authentication code")
    page.fill("#f-code", "000000")
    page.click("button:has-text('Verify')")
    expect(page.locator(".alert")).to_contain_text("wrong or was already used")
    # The enrolment code's step is used up; the next step is within the allowed drift.
    page.fill("#f-code", totp.at(time.time() + totp.interval))
    page.click("button:has-text('Verify')")
    expect(page).to_have_url(live.url + "/")
    expect(page.locator("h1")).to_have_text("What needs doing")
    expect(page.locator("body")).to_contain_text("Bob Leaver")
    expect(page.locator("body")).to_contain_text("Cloud Hosting GmbH")
    expect(page.locator("body")).to_contain_text("security_officer@example.eu")
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "dashboard.png"), full_page=True)


def test_create_an_asset_through_the_form(page: object, live: Live) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    _enrol_admin(page, live)
    page.click("a:has-text('New asset')")
    page.fill("#f-external_id", "A-200")
    page.fill("#f-name", "Cold storage HSM")
    page.select_option("#f-type", "hsm")
    page.select_option("#f-criticality", "important")
    page.fill("#f-location", "Frankfurt vault")
    page.fill("#f-tags", "custody, hsm")
    page.click("button:has-text('Create asset')")
    expect(page.locator("h1")).to_have_text("Cold storage HSM")
    expect(page.locator(".flash")).to_have_text("Created.")
    page.click("nav a:has-text('Assets')")
    expect(page.locator("table")).to_contain_text("Cold storage HSM")
    expect(page.locator("table")).to_contain_text("A-200")
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "assets.png"), full_page=True)


def test_import_with_a_bad_row_writes_nothing(page: object, live: Live) -> None:
    from playwright.sync_api import FilePayload, Page, expect

    assert isinstance(page, Page)
    _enrol_admin(page, live)
    csv = (
        "external_id,email,full_name,kind,department,manager_email,status\n"
        "E-1,ada@firm.eu,Ada Lovelace,employee,Custody,,active\n"
        "E-2,carl@firm.eu,Carl Gauss,employee,Custody,nobody@firm.eu,active\n"
    )
    page.click("nav a:has-text('Import')")
    page.select_option("#f-kind", "people")
    upload: FilePayload = {"name": "people.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    page.set_input_files("#f-file", files=[upload])
    page.click("button:has-text('Dry run')")
    expect(page.locator("#import-outcome")).to_contain_text("Nothing was imported.")
    first = page.locator("#import-errors tbody tr").first
    expect(first.locator("td").nth(0)).to_have_text("3")
    expect(first.locator("td").nth(1)).to_have_text("manager_email")
    expect(first.locator("td").nth(2)).to_contain_text("nobody@firm.eu")
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "import-report.png"), full_page=True)
    page.click("nav a:has-text('People')")
    expect(page.locator("table")).to_contain_text("No people yet")
