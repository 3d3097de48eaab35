"""From a staff member's request, through two approvals by two people, to the grant on the requester's page.

In Debian's Chromium, driven by Playwright, against uvicorn on the real clock (TOTP codes are real).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from portcullis.access import catalogue
from portcullis.access.schemas import EntitlementIn
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn
from tests.factories import PASSWORD, Made, make_user
from tests.web.test_browser import ARGS, CHROMIUM, RESULTS, Live, live  # noqa: F401  (live is a fixture)

pytestmark = pytest.mark.browser
SYSTEM = Principal.system("tests")


@dataclass
class Cast:
    staff: Made
    owner: Made
    officer: Made


def _setup(rt: Runtime) -> Cast:
    with rt.work(SYSTEM) as ctx:
        people = {
            key: inventory.create_person(
                ctx,
                PersonIn(external_id=f"E-{n}", email=f"{key}@firm.eu", full_name=name, status="active",
                         mfa_enrolled=True),
            ).id
            for n, (key, name) in enumerate(
                (("stan", "Stan Staff"), ("olga", "Olga Owner"), ("sam", "Sam Security")), start=1
            )
        }
        wallet = inventory.create_asset(
            ctx, AssetIn(external_id="A-1", name="Hot wallet", type="wallet", criticality="critical",
                         owner_id=people["olga"])
        )
        catalogue.create_entitlement(
            ctx,
            EntitlementIn(key="wallet.signer", name="Hot wallet signer", asset_id=wallet.id, privileged=True,
                          approvers=["owner", "security_officer"], min_approvals=2, max_duration_days=30),
        )
    cast = Cast(
        staff=make_user(rt, Role.STAFF, email="stan.user@firm.eu", enrol_mfa=False),
        owner=make_user(rt, Role.APPROVER, email="olga.user@firm.eu"),
        officer=make_user(rt, Role.SECURITY_OFFICER, email="sam.user@firm.eu"),
    )
    with rt.work(SYSTEM) as ctx:
        for made, key in ((cast.staff, "stan"), (cast.owner, "olga"), (cast.officer, "sam")):
            catalogue.link_user_to_person(ctx, made.user.id, people[key])
    return cast


def _log_in(page: object, server: Live, made: Made, path: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(server.url + path)
    page.fill("#f-email", made.user.email)
    page.fill("#f-password", PASSWORD)
    page.click("button:has-text('Continue')")
    if made.totp is not None:
        expect(page.locator("h1")).to_have_text("Authentication code")
        # The enrolment used the current step's code; the next step is within the allowed drift.
        page.fill("#f-code", made.totp.at(time.time() + made.totp.interval))
        page.click("button:has-text('Verify')")
    expect(page).to_have_url(server.url + path)


def test_a_request_through_two_approvals_to_the_grant(live: Live) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    cast = _setup(live.rt)
    RESULTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        # One browser context per person: separate cookies, as separate people at separate desks.
        desks = {
            name: browser.new_context(viewport={"width": 1360, "height": 1000}) for name in ("stan", "olga", "sam")
        }
        try:
            stan = desks["stan"].new_page()
            _log_in(stan, live, cast.staff, "/access")
            expect(stan.locator("h1")).to_have_text("My access")
            expect(stan.locator("#my-grants")).to_contain_text("You hold no access yet.")
            stan.select_option("#f-target", label="Hot wallet signer [privileged]")
            stan.fill("#f-justification", "Signing the cold-to-hot top-up during the quarter close.")
            stan.fill("#f-duration_days", "7")
            stan.click("button:has-text('Send request')")
            expect(stan.locator(".flash")).to_contain_text("Your request has been recorded")
            waiting = stan.locator("#my-requests tbody tr").first
            expect(waiting).to_contain_text("Hot wallet signer")
            expect(waiting).to_contain_text("0 of 2")
            stan.screenshot(path=str(RESULTS / "access-request.png"), full_page=True)

            # First approval: the wallet's owner.
            olga = desks["olga"].new_page()
            _log_in(olga, live, cast.owner, "/access/approvals")
            card = olga.locator("section.request").first
            expect(card).to_contain_text("Hot wallet signer")
            expect(card).to_contain_text("privileged")
            expect(card).to_contain_text("stan@firm.eu")
            expect(card.locator(".approvals")).to_contain_text("0 of 2")
            card.locator("textarea").fill("Owner: needed for the close.")
            card.locator("button:has-text('Approve')").click()
            expect(olga.locator(".flash")).to_contain_text("Your approval has been recorded")
            expect(olga.locator(".notice")).to_contain_text("Nothing is waiting for your decision")

            # One approval is not enough for privileged access: nothing granted yet.
            stan.reload()
            expect(stan.locator("#my-grants")).to_contain_text("You hold no access yet.")
            expect(stan.locator("#my-requests tbody tr").first).to_contain_text("1 of 2")

            # Second approval: a security officer, a different person.
            sam = desks["sam"].new_page()
            _log_in(sam, live, cast.officer, "/access/approvals")
            card = sam.locator("section.request").first
            expect(card.locator(".approvals")).to_contain_text("1 of 2")
            card.locator("textarea").fill("Security: MFA in place, seven days.")
            sam.screenshot(path=str(RESULTS / "access-approvals.png"), full_page=True)
            card.locator("button:has-text('Approve')").click()
            expect(sam.locator(".flash")).to_contain_text("Your approval has been recorded")

            # The grant is on the requester's page, and the request no longer waits.
            stan.reload()
            held = stan.locator("#my-grants tbody tr").first
            expect(held).to_contain_text("Hot wallet signer")
            expect(held).to_contain_text("privileged")
            expect(held).to_contain_text("ICT asset A-1")
            expect(held).to_contain_text("time bound")
            expect(stan.locator("#my-requests")).to_contain_text("No request of yours is waiting.")
            stan.screenshot(path=str(RESULTS / "access-granted.png"), full_page=True)

            # The security officer sees it among all grants.
            sam.click("nav a:has-text('Grants')")
            expect(sam.locator("#grants")).to_contain_text("stan@firm.eu")
            expect(sam.locator("#grants")).to_contain_text("Hot wallet signer")
        finally:
            for desk in desks.values():
                desk.close()
            browser.close()
