"""A real browser (headless Chromium, driven by Playwright) against `make run` as it is:
the docs page, and the example web page calling the public API from another origin.

tests/support/browser.py says how the browser is started; a failing test saves a screenshot
under its pytest temp dir and prints the path.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from harness.processes import PASSWORD, Trio, http, sign_up, token_for
from tests.support.browser import in_browser

FILTERS = {"user_id", "listing_type", "min_price", "max_price", "price_changed_since"}


def listings(trio: Trio, **query: object) -> list[dict]:
    page = "&".join(f"{k}={v}" for k, v in {"page_size": 100, **query}.items())
    status, body = http("GET", f"{trio.public_url}/public-api/listings?{page}")
    assert status == 200, body
    return body["listings"]


def test_the_docs_page_stays_on_its_host_and_its_try_it_out_works(
        web_trio: Trio, tmp_path: Path) -> None:
    api = web_trio.public_url
    owner = sign_up(api, "Docs Reader")
    token = token_for(api, owner["id"])

    def work(page: Page) -> list[str]:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(api + "/public-api/docs")
        expect(page).to_have_title(re.compile("Property portal public API"))

        # GET listings: Try it out sends no filter unless one is typed.
        block = page.locator("#operations-listings-listListings")
        block.locator(".opblock-summary").click()
        block.locator(".try-out__btn").click()
        with page.expect_response(re.compile(r"/public-api/listings(\?|$)")) as answer:
            block.locator(".execute").click()
        assert answer.value.status == 200
        sent = set(parse_qs(urlsplit(answer.value.url).query))
        assert not sent & FILTERS, answer.value.url
        status = block.locator(".live-responses-table tbody .response-col_status").first
        expect(status).to_have_text("200")

        # POST users, its example body as it stands: 201.
        block = page.locator("#operations-users-createUser")
        block.locator(".opblock-summary").click()
        block.locator(".try-out__btn").click()
        with page.expect_response(re.compile(r"/public-api/users$")) as answer:
            block.locator(".execute").click()
        assert answer.value.status == 201, answer.value.text()

        # Authorize with a token from POST /public-api/tokens, then change one's own name.
        page.locator(".auth-wrapper .authorize").click()
        page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(
            token)
        page.locator(".modal-ux .auth-btn-wrapper .authorize").click()
        page.locator(".modal-ux .btn-done").click()
        block = page.locator("#operations-users-updateUser")
        block.locator(".opblock-summary").click()
        block.locator(".try-out__btn").click()
        block.locator("input[placeholder=id]").fill(str(owner["id"]))
        with page.expect_response(re.compile(rf"/public-api/users/{owner['id']}$")) as answer:
            block.locator(".execute").click()
        assert answer.value.status == 200, answer.value.text()
        assert answer.value.request.headers["authorization"] == f"Bearer {token}"
        return requested

    requested = in_browser(work, tmp_path)
    hosts = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert hosts == {urlsplit(api).netloc}, requested
    assert http("GET", f"{api}/public-api/users/{owner['id']}")[1]["user"]["name"] == (
        "Suresh Subramanian")  # the PATCH's example body


def test_the_example_page_from_another_origin_does_everything(
        web_trio: Trio, tmp_path: Path) -> None:
    api = web_trio.public_url
    assert urlsplit(web_trio.web_url).port != urlsplit(api).port  # another origin
    seller = sign_up(web_trio.public_url, "Page Seller")
    for price in range(1001, 1013):  # 12 listings: two pages of 10
        assert http("POST", api + "/public-api/listings", {
            "user_id": seller["id"], "listing_type": "sale" if price % 2 else "rent",
            "price": price})[0] == 201
    total = len(listings(web_trio))

    def work(page: Page) -> None:
        rows = page.locator("#listings tr")
        message = page.locator("#message")
        page.goto(f"{web_trio.web_url}/?api={api}")
        # Listed, newest first, with their owners' names; then paginated.
        expect(rows).to_have_count(10)
        expect(rows.first).to_contain_text("Page Seller")
        expect(rows.first).to_contain_text("1,012")
        page.click("#next")
        expect(page.locator("#page-num")).to_have_text("2")
        expect(rows).to_have_count(total - 10)
        page.click("#prev")
        expect(rows).to_have_count(10)
        # Filtered by type and price.
        page.select_option("#filter-type", "sale")
        page.fill("#filter-min", "1004")
        page.fill("#filter-max", "1009")
        page.click("#filters button[type=submit]")
        expect(rows).to_have_count(3)  # 1005, 1007, 1009
        for row in rows.all():
            expect(row).to_contain_text("sale")
        page.select_option("#filter-type", "")
        page.fill("#filter-min", "")
        page.fill("#filter-max", "")
        page.click("#filters button[type=submit]")
        expect(rows).to_have_count(10)

        # A wrong form: the API's own message.
        page.fill("#signup-password", PASSWORD)
        page.click("#signup button[type=submit]")
        expect(message).to_have_class("error")
        expect(message).to_contain_text("name:")
        # Sign up, log in.
        page.fill("#signup-name", "Browser Buyer")
        page.click("#signup button[type=submit]")
        expect(message).to_contain_text("Signed up as Browser Buyer")
        page.fill("#login-password", "wrong password")
        page.click("#login button[type=submit]")
        expect(message).to_have_class("error")
        page.fill("#login-password", PASSWORD)
        page.click("#login button[type=submit]")
        expect(page.locator("#who")).to_contain_text("Browser Buyer")

        # Create: a wrong price first (the API's message), then a right one.
        page.fill("#listing-price", "12.5")
        page.click("#listing-submit")
        expect(message).to_have_class("error")
        expect(message).to_contain_text("price:")
        page.select_option("#listing-type", "rent")
        page.fill("#listing-price", "4321")
        page.click("#listing-submit")
        expect(message).to_contain_text("created")
        mine = rows.filter(has_text="Browser Buyer")
        expect(mine).to_have_count(1)
        expect(mine).to_contain_text("4,321")
        # Only one's own listings have Edit and Delete.
        expect(rows.filter(has_text="Page Seller").locator("button")).to_have_count(0)
        # Edit.
        mine.locator("text=Edit").click()
        page.fill("#listing-price", "5000")
        page.click("#listing-submit")
        expect(message).to_contain_text("saved")
        expect(mine).to_contain_text("5,000")
        # Delete.
        mine.locator("text=Delete").click()
        expect(message).to_contain_text("deleted")
        expect(mine).to_have_count(0)

    in_browser(work, tmp_path)
    buyer = [u for u in (http("GET", f"{api}/public-api/users/{seller['id'] + n}")[1]
                         for n in (1, 2)) if u and u.get("user", {}).get("name") == "Browser Buyer"]
    assert buyer, "the page's sign-up reached the API"
    after = listings(web_trio)
    assert len(after) == total  # created, then deleted
    assert not [item for item in after if item["user"]["name"] == "Browser Buyer"]


def test_the_same_page_from_an_origin_not_allowed_is_blocked_by_the_browser(
        web_trio: Trio, other_origin: str, tmp_path: Path) -> None:
    api = web_trio.public_url
    before = listings(web_trio)
    last = sign_up(web_trio.public_url, "Last Before")

    def work(page: Page) -> list[str]:
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(f"{other_origin}/?api={api}")
        message = page.locator("#message")
        # The page sees the failure: no listing, and the reason in its message.
        expect(message).to_contain_text("cannot reach the API")
        expect(page.locator("#listings tr")).to_have_count(0)
        page.fill("#signup-name", "Blocked Person")
        page.fill("#signup-password", PASSWORD)
        page.evaluate("document.getElementById('message').textContent = ''")
        page.click("#signup button[type=submit]")
        expect(message).to_contain_text("cannot reach the API")
        return failed

    failed = in_browser(work, tmp_path)
    assert any(url.startswith(api) for url in failed), failed
    # The API's data is unchanged: no new user, the same listings.
    assert http("GET", f"{api}/public-api/users/{last['id'] + 1}")[0] == 404
    assert listings(web_trio) == before


def test_a_script_calling_a_url_with_a_trailing_slash_is_redirected_not_blocked(
        web_trio: Trio, tmp_path: Path) -> None:
    """A PATCH with a token is preflighted; a browser does not follow a redirected preflight,
    so the preflight to `.../1/` is answered as `.../1`'s would be, and the PATCH itself then
    follows the 308."""
    api = web_trio.public_url
    owner = sign_up(api, "Slash Owner")
    token = token_for(api, owner["id"])
    status, body = http("POST", api + "/public-api/listings", {
        "user_id": owner["id"], "listing_type": "rent", "price": 700})
    assert status == 201, body
    listing = body["listing"]["id"]

    def work(page: Page) -> object:
        page.goto(web_trio.web_url + "/")
        return page.evaluate("""async ([url, token]) => {
            try {
                const answer = await fetch(url, {method: "PATCH", headers: {
                    "Authorization": "Bearer " + token, "Content-Type": "application/json"},
                    body: JSON.stringify({price: 750})});
                return [answer.status, answer.redirected, await answer.json()];
            } catch (error) { return String(error); }
        }""", [f"{api}/public-api/listings/{listing}/", token])

    outcome = in_browser(work, tmp_path)
    assert isinstance(outcome, list), outcome  # else the browser's error: "Failed to fetch"
    status, redirected, answer = outcome
    assert (status, redirected, answer["listing"]["price"]) == (200, True, 750), answer
    assert http("GET", f"{api}/public-api/listings/{listing}")[1]["listing"]["price"] == 750
