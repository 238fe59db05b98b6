"""The dashboard in a real browser against a real server (tests/browser/conftest.py).

One flow follows an execution from config to lineage: the editor shows a typo's
diagnostic at its line, the fixed config runs, the status and the DAG's counts change
live, a segment's lineage chain opens with its stored artefact, its dead letter is
redriven. Then a viewer's pages have no write buttons, every page passes axe with no
serious violation, and the security headers are sent. `FACTFLOW_SCREENSHOTS=DIR` keeps
screenshots of the main pages (the README's are made so).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from factflow.extras import EMBEDDINGS
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Dashboard

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Axe = pytest.importorskip(
    "axe_playwright_python.sync_playwright",
    reason="pip install axe-playwright-python (the dev extra)",
).Axe

HERE = Path(__file__).parent
DEMO = (HERE / "demo.yaml").read_text()
SHOTS = os.environ.get("FACTFLOW_SCREENSHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def signed_in(browser: Browser, dashboard: Dashboard, key: str | None = None) -> Iterator[Page]:
    """A page signed in with `key`, or else with the admin's password (a session cookie,
    whose writes carry the CSRF token)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{dashboard.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    if key is None:
        page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
        page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in with password").click()
    else:
        page.get_by_label("API key", exact=True).fill(key)
        page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def admin(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    yield from signed_in(browser, dashboard)


@pytest.fixture
def viewer(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    yield from signed_in(browser, dashboard, dashboard.viewer_key)


def test_config_to_live_execution_to_lineage_and_redrive(admin: Page, dashboard: Dashboard) -> None:
    page = admin
    page.get_by_role("link", name="Configs").click()
    page.get_by_role("button", name="New config").click()
    editor = page.locator("#config-yaml")
    typo = DEMO.replace("type: split", "type: spilt")
    line = DEMO.splitlines().index("      - type: split") + 1
    editor.fill(typo)
    diagnostic = page.locator('#diagnostics li[data-code="E103"]')
    expect(diagnostic).to_contain_text(f"line {line}:")
    expect(diagnostic).to_contain_text("did you mean 'split'?")
    expect(page.locator(f'.gutter span[data-line="{line}"]')).to_have_class("error")
    expect(page.locator("#verdict")).to_contain_text("1 errors")

    editor.fill(DEMO)
    expect(page.locator("#verdict")).to_contain_text("valid")
    expect(page.locator("#diagnostics li")).to_have_count(0)
    page.locator("#config-name").fill("browser-demo")
    page.get_by_role("button", name="Save and run").click()
    page.wait_for_url("**/#/executions/*")
    status = page.locator("#exec-status")
    expect(status).to_have_attribute("data-status", "running", timeout=30_000)

    # the slow step's count, read as the page updates itself (no reload), until the end
    count = page.locator('[data-adapter="work/0"]')
    seen: list[str] = []
    deadline = time.monotonic() + 90
    while status.get_attribute("data-status") != "completed":
        assert time.monotonic() < deadline, f"not completed; counts seen {seen}"
        text = count.text_content() or ""
        if not seen or seen[-1] != text:
            seen.append(text)
        page.wait_for_timeout(150)
    expect(count).to_contain_text("done 10", timeout=10_000)
    assert seen[0].startswith("done 0") and len(seen) >= 2, seen
    expect(page.locator('[data-adapter="work/1"]')).to_contain_text("failed 1", timeout=10_000)
    expect(page.locator("#events")).to_contain_text("execution.completed")
    expect(page.locator("#worker-logs summary")).to_have_text(["process-0.log"])
    shot(page, "execution")

    # a work item's lineage: its chain back to the init message, its stored artefact
    page.get_by_role("link", name="work/RejectsBad").first.click()
    chain = page.locator(".chain > .chain-node")
    expect(chain).to_have_count(3)  # split, Slow, RejectsBad
    expect(chain.first).to_contain_text("fan / split")
    expect(page.locator(".chain-node.selected")).to_contain_text("work / RejectsBad")
    expect(page.locator(".preview pre.json")).to_contain_text('"payload"')
    shot(page, "lineage")

    page.get_by_role("link", name="Dead letters").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("non_retryable")
    page.get_by_role("button", name="Redrive").click()
    expect(page.get_by_role("status")).to_contain_text("redriven: 1")
    expect(page.get_by_role("button", name="Redrive")).to_have_count(0, timeout=5_000)

    # signing out ends the session: the page asks again
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert dashboard.api("GET", "deadletters").json()[0]["redriven_at"] is not None


def test_chat_streams_an_answer_whose_sources_lead_into_lineage(
    admin: Page, dashboard: Dashboard
) -> None:
    missing = EMBEDDINGS.missing()
    if missing is not None:
        pytest.skip(f"the local embedding model needs {missing} ({EMBEDDINGS.install})")
    from tests.integration.chat.conftest import CHAIN, seed_with_lineage

    # the search corpus indexed as a docs crawl would have left it (tests/integration/chat);
    # in a thread: Playwright's event loop runs in this one, and the seeding runs its own
    with ThreadPoolExecutor(1) as pool:
        pool.submit(seed_with_lineage, dashboard.database_url).result()
    page = admin
    page.get_by_role("link", name="Chat").click()
    expect(page.locator("main")).to_contain_text("extractive answers")
    page.get_by_label("Question").fill("how does a killed worker resume?")
    page.get_by_role("button", name="Ask").click()
    sources = page.locator(".sources > li")
    expect(sources.first).to_be_visible(timeout=90_000)  # the server loads the query model
    answer = page.locator(".answer")
    expect(answer).to_have_attribute("data-state", "done", timeout=30_000)
    expect(answer.locator("a.cite-ref").first).to_have_text("[1]")
    expect(page.locator(".answer-meta")).to_contain_text("extractive")
    shot(page, "chat")
    sources.first.get_by_role("link", name="lineage").click()
    expect(page.locator(".chain > .chain-node")).to_have_count(len(CHAIN))
    expect(page.locator(".chain-node.selected")).to_contain_text(CHAIN[-1])
    shot(page, "lineage-of-a-source")


def test_costs_page_charts_tokens_per_model_and_day(admin: Page, dashboard: Dashboard) -> None:
    from factflow.db.connection import connect
    from factflow.db.repositories.usage import UsageRecord, record_usage

    calls = [
        UsageRecord("completion", "answer", "openai", "gpt-4o-mini", 1200, 300, 0.0009, 800.0),
        UsageRecord("completion", "answer", "openai", "gpt-4o-mini", 800, 200, 0.0006, 700.0),
        UsageRecord("completion", "rewrite", "anthropic", "claude-haiku", 500, 50, None, 300.0),
    ]
    with connect(dashboard.database_url) as conn:
        # the chat test before this one booked its query embeddings: start from none
        conn.execute("DELETE FROM llm_usage")
        record_usage(conn, calls)
    admin.get_by_role("link", name="Costs").click()
    expect(admin.locator("main")).to_contain_text("3 model calls, 3050 tokens, $0.0015")
    expect(admin.locator("main")).to_contain_text("1 calls of unpriced models")
    expect(admin.locator("svg.chart rect")).to_have_count(2)  # today, one bar per model
    rows = admin.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("gpt-4o-mini")  # the most expensive first
    expect(rows.first).to_contain_text("0.0015")
    expect(rows.last).to_contain_text("unpriced")
    shot(admin, "costs")


def test_viewer_sees_no_write_buttons(viewer: Page, dashboard: Dashboard) -> None:
    page = viewer
    expect(page.locator("#who")).to_contain_text("viewer@example.com")
    configs = dashboard.api("GET", "configs").json()
    executions = dashboard.api("GET", "executions").json()
    assert configs and executions, "runs after the flow test, which made them"
    config, run = configs[0]["id"], executions[0]["id"]
    for path in ("#/configs", f"#/configs/{config}", f"#/executions/{run}", "#/deadletters",
                 "#/webhooks"):  # fmt: skip
        page.goto(f"{dashboard.url}/{path}")
        expect(page.locator("main h1")).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.locator("[data-write]").count() == 0, path
        assert page.get_by_role("button", name="Redrive").count() == 0
    # webhooks need webhooks:manage: not in the viewer's menu, and refused if opened
    expect(page.get_by_role("alert")).to_contain_text("403")
    expect(page.get_by_role("link", name="Webhooks")).to_be_hidden()
    page.goto(f"{dashboard.url}/#/configs/{configs[0]['id']}")
    expect(page.locator("#config-yaml")).to_have_attribute("readonly", "")
    # and the server refuses the write anyway
    refused = httpx.post(
        f"{dashboard.url}/api/v1/configs/{configs[0]['id']}/run",
        headers={"X-API-Key": dashboard.viewer_key}, json={},
    )  # fmt: skip
    assert refused.status_code == 403


def test_pages_have_no_serious_accessibility_violations(admin: Page, dashboard: Dashboard) -> None:
    axe = Axe()
    letter = dashboard.api("GET", "deadletters").json()[0]
    run = dashboard.api("GET", "executions").json()[0]["id"]
    row = dashboard.api("GET", f"executions/{run}/lineage", params={"limit": 1}).json()[0]
    pages = {
        "overview": "#/",
        "configs": "#/configs",
        "editor": "#/configs/new",
        "executions": "#/executions",
        "execution": f"#/executions/{run}",
        "lineage": f"#/lineage?id={row['id']}",
        "storage": f"#/storage?prefix=executions/{run}/",
        "deadletters": "#/deadletters",
        "deadletter": f"#/deadletters/{letter['id']}",
        "search": "#/search?q=hello",
        "chat": "#/chat",
        "usage": "#/usage",
        "webhooks": "#/webhooks",
        "keys": "#/keys",
        "users": "#/users",
    }
    problems = {}
    for name, path in pages.items():
        admin.goto(f"{dashboard.url}/{path}")
        expect(admin.locator("main h1")).to_be_visible()
        admin.wait_for_load_state("networkidle")
        found = [
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in axe.run(admin).response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if found:
            problems[name] = found
        if name in ("overview", "editor", "storage"):
            shot(admin, name)
    assert not problems, problems


def test_stored_html_is_previewed_sandboxed(admin: Page, dashboard: Dashboard) -> None:
    key = "executions/preview/crawl/web_scraper/page.json"
    page_html = (
        "<html><body><h1>Stored page</h1><p>" + "words " * 30 + "</p>"
        "<script>parent.document.title = 'ran'; document.body.dataset.ran = 'yes'</script>"
        "</body></html>"
    )
    stored = dashboard.root / "output" / "storage" / key
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps({"payload": {"html": page_html}}))
    admin.goto(f"{dashboard.url}/#/storage?prefix=executions/preview/crawl/web_scraper/&key={key}")
    frame = admin.frame_locator(".preview iframe")
    expect(frame.locator("h1")).to_have_text("Stored page")
    assert admin.locator(".preview iframe").get_attribute("sandbox") == ""
    assert frame.locator("body").get_attribute("data-ran") is None
    assert admin.title() == "factflow"
    expect(admin.locator(".preview summary")).to_have_text(["html (html)", "json"])


def test_signed_out_page_and_security_headers(browser: Browser, dashboard: Dashboard) -> None:
    index = httpx.get(f"{dashboard.url}/")
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert httpx.get(f"{dashboard.url}/ui/static/app.js").headers["content-security-policy"] == csp
    session = httpx.get(f"{dashboard.url}/ui/session", headers={"X-API-Key": "ff_live_nope"})
    assert session.json()["principal"] is None and session.json()["auth"] == "keys"
    # stored objects opened directly are sandboxed too
    keys = httpx.get(
        f"{dashboard.url}/api/v1/storage/objects", headers={"X-API-Key": dashboard.admin_key},
        params={"limit": 1},
    ).json()["objects"]  # fmt: skip
    if keys:
        stored = httpx.get(
            f"{dashboard.url}/api/v1/storage/objects/{keys[0]['key']}",
            headers={"X-API-Key": dashboard.admin_key},
        )
        assert stored.headers["content-security-policy"] == "sandbox"
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{dashboard.url}/#/executions")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key", exact=True).fill("ff_live_not_a_key")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    context.close()
