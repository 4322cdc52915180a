"""The web console in headless Chromium against a real `zhiku serve` (fake models), network blocked.

Troubleshooting: needs Debian's `chromium` (`make install` adds it) and, for the
accessibility scan, axe-core from npm in `.cache/npm` (`make install` too); the
tests skip when either is missing. Every request that does not go to the
loopback server is aborted and counted; console errors fail the test. Set
ZHIKU_SCREENSHOTS=docs/images to save a PNG of each view in both languages.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from api_support import DOCS, free_port

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[1] / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
REFUSED_QUESTION = "What is the airspeed velocity of an unladen swallow?"

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (make install)", allow_module_level=True)


class Server:
    """`zhiku serve` in a subprocess, with an admin and a read-only key."""

    def __init__(self, data_dir: Path) -> None:
        from zhiku.api.security import KeyStore

        keys = KeyStore(data_dir)
        self.admin, _ = keys.create(["*"], "admin", name="console-admin")
        self.reader, _ = keys.create(["docs"], "read", name="console-reader")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "ZHIKU_EMBED__BACKEND": "fake",
            "ZHIKU_LLM__BACKEND": "fake",
            "ZHIKU_STORE__BACKEND": "edge",
            # Every upload becomes a background job, so the console follows /jobs/{id}.
            "ZHIKU_SERVER__INLINE_INGEST_MB": "0",
        }
        cmd = [sys.executable, "-c", "from zhiku.cli import main; main()", "serve",
               "--port", str(self.port), "--data-dir", str(data_dir), "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("zhiku serve did not start: " + self.proc.stderr.read().decode()[-2000:])
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {self.admin}"}
        r = httpx.post(self.base + "/documents", json={"collection": "docs", "documents": DOCS}, headers=auth, timeout=60)
        assert r.status_code == 201, r.text

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("console"))
    yield srv
    srv.close()


class Watch:
    """Requests that left loopback (aborted) and console errors, per browser context."""

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self.errors: list[str] = []

    def route(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """open_page(server, locale, key) -> (page, watch); checks no request left loopback and no console errors."""
    made: list[tuple[Any, Watch]] = []

    def make(server: Server, locale: str = "en-US", key: str | None = None, expected_errors: int = 0) -> tuple[Any, Watch]:
        context = browser.new_context(locale=locale, viewport={"width": 1100, "height": 760})
        watch = Watch()
        context.route("**/*", watch.route)
        page = context.new_page()
        page.on("console", watch.console)
        page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
        page.set_default_timeout(30_000)
        if key:  # what the key view stores (test_key_field_and_error_messages types it in)
            context.add_init_script(f"sessionStorage.setItem('zhiku.key', {json.dumps(key)})")
        made.append((context, watch))
        return page, watch

    yield make
    for context, watch in made:
        context.close()
        assert watch.blocked == [], f"requests left loopback: {watch.blocked}"
        assert watch.errors == [], f"console errors: {watch.errors}"


def _go(page: Any, server: Server, view: str) -> None:
    page.goto(f"{server.base}/ui/#/{view}")
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector("main h1")


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("ZHIKU_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def test_root_links_the_console_with_csp(server: Server) -> None:
    r = httpx.get(server.base + "/", follow_redirects=True)
    assert r.url.path == "/ui/"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "http" not in csp


def test_collection_upload_search_ask(server: Server, open_page: Any, tmp_path: Path) -> None:
    page, _ = open_page(server, key=server.admin)
    _go(page, server, "collections")
    page.fill("#new-collection", "demo")
    page.click("form button[type=submit]")
    page.wait_for_selector("table.grid >> text=demo")
    page.select_option("#collection", "demo")

    files = []
    for name, text in [("louvre.md", "# Louvre\n\nThe Louvre is the world's most visited museum, in Paris."),
                       ("colosseum.txt", "The Colosseum is an amphitheatre in the centre of Rome."),
                       ("bad.pdf", "%PDF-1.4 this is not really a pdf")]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    _go(page, server, "upload")
    page.set_input_files("#pick-files", files)
    job = page.wait_for_selector("li.job.done, li.job.failed", timeout=60_000)
    assert "done" in (job.get_attribute("class") or "")
    assert "2 documents" in job.inner_text()
    assert "bad.pdf" in job.inner_text()  # the broken file is listed with its reason
    _shot(page, "upload-en")

    _go(page, server, "search")
    page.fill("#q", "Louvre museum")
    page.click("form button[type=submit]")
    first = page.wait_for_selector("ol.hits li.hit")
    assert "Louvre" in first.inner_text()
    assert page.locator("ol.hits mark").count() >= 1
    page.check("#debug")
    page.click("form button[type=submit]")
    page.wait_for_selector("section.debug table")
    assert "total" in page.inner_text("section.debug")
    _shot(page, "search-en")


def test_ask_streams_and_opens_citation(server: Server, open_page: Any) -> None:
    page, _ = open_page(server, key=server.admin)
    _go(page, server, "ask")
    page.select_option("#collection", "docs")
    page.wait_for_selector("#question")
    page.fill("#question", "Where is the Eiffel Tower?")
    page.click("#send")
    page.wait_for_selector(".refs li")  # references arrive before the answer
    cite = page.wait_for_selector(".answer button.cite")
    assert cite.inner_text() == "[1]"
    assert "Paris" in page.inner_text(".answer")
    cite.click()
    dialog = page.wait_for_selector("dialog#cited[open]")
    assert "Eiffel" in dialog.inner_text()
    assert page.locator("dialog#cited mark").count() >= 1
    _shot(page, "ask-en")
    page.click("dialog#cited button")

    page.fill("#question", REFUSED_QUESTION)
    page.click("#send")
    reason = page.wait_for_selector(".turn.bot:last-child .refusal .reason")
    assert "too weakly" in reason.inner_text()
    assert page.locator(".turn.bot").count() == 2  # the follow-up kept the conversation


def test_read_only_key_sees_no_write_controls(server: Server, open_page: Any) -> None:
    page, _ = open_page(server, key=server.reader)
    _go(page, server, "collections")
    assert page.locator("nav a[href='#/upload']").count() == 0
    assert page.locator("#new-collection").count() == 0
    assert page.locator("button.danger").count() == 0
    _go(page, server, "upload")
    assert page.locator("#dropzone").count() == 0
    _go(page, server, "documents")
    page.wait_for_selector("#doc-list table")
    assert page.locator("button.danger").count() == 0
    page.fill("#doc-filter", "lang=zh")
    page.click("#doc-filter ~ button[type=submit]")
    page.wait_for_selector("#doc-list tbody tr >> nth=0 >> text=gugong")
    assert page.locator("#doc-list tbody tr").count() == 1
    page.click("#doc-list button.link")
    page.wait_for_selector("main h1:text-is('故宫')")


def test_key_field_and_error_messages(server: Server, open_page: Any) -> None:
    page, watch = open_page(server)  # no key while keys exist: every call is 401
    _go(page, server, "key")
    notice = page.wait_for_selector("#notice:not([hidden])")
    text = notice.inner_text()
    assert "API key" in text and "{" not in text  # the error shape as words, never raw JSON
    page.fill("#api-key", server.reader)
    page.click("#api-key ~ button[type=submit]")
    page.wait_for_selector("#key-scope:has-text('read on docs')")  # CSP forbids wait_for_function's eval
    assert page.evaluate("sessionStorage.getItem('zhiku.key')") == server.reader
    watch.errors.clear()  # the browser itself logs the 401 responses before the key was given


def test_languages(server: Server, open_page: Any) -> None:
    page, _ = open_page(server, locale="zh-CN", key=server.admin)
    _go(page, server, "search")
    assert page.inner_text("main h1") == "搜索"
    assert page.get_attribute("html", "lang") == "zh-CN"
    page.click("#lang")
    page.wait_for_selector("main h1:text-is('Search')")


def test_docs_render_offline(server: Server, open_page: Any) -> None:
    page, _ = open_page(server)
    page.goto(server.base + "/docs")
    page.wait_for_selector(".opblock", timeout=60_000)
    assert page.locator(".opblock").count() >= 10
    assert page.locator("text=/search").count() >= 1
    page.goto(server.base + "/redoc")
    page.wait_for_selector("text=Hybrid (dense + BM25) search", timeout=60_000)
    assert page.locator("[data-section-id^='operation/']").count() >= 10


def test_screenshots_and_accessibility(server: Server, open_page: Any, tmp_path: Path) -> None:
    """An axe-core scan of every view (no serious or critical violations); screenshots in both languages."""
    if not AXE.exists() and not os.environ.get("ZHIKU_SCREENSHOTS"):
        pytest.skip("axe-core is not installed (make install puts it in .cache/npm)")
    axe = AXE.read_text(encoding="utf-8") if AXE.exists() else None
    problems: list[str] = []
    for locale, suffix in (("en-US", "en"), ("zh-CN", "zh")):
        page, _ = open_page(server, locale=locale, key=server.admin)
        for view in ("collections", "upload", "search", "ask", "documents", "key"):
            _go(page, server, view)
            page.select_option("#collection", "docs")
            _go(page, server, view)
            if view == "upload":  # scan and show a finished job, not just the drop zone
                note = tmp_path / f"notes-{suffix}.md"
                note.write_text("# Notes\n\nThe Forbidden City is in Beijing. 故宫在北京。", encoding="utf-8")
                page.set_input_files("#pick-files", [str(note)])
                page.wait_for_selector("li.job.done", timeout=60_000)
            if view == "search":
                page.fill("#q", "Eiffel Tower" if suffix == "en" else "故宫")
                page.click("form button[type=submit]")
                page.wait_for_selector("ol.hits li")
            if view == "ask":
                page.fill("#question", "Where is the Eiffel Tower?" if suffix == "en" else "故宫在哪里？")
                page.click("#send")
                page.wait_for_selector(".answer:not([aria-busy])")
            if view == "documents":
                page.wait_for_selector("#doc-list table")
            _shot(page, f"{view}-{suffix}")
            if axe:
                page.evaluate(axe)
                result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
                for v in result:
                    if v["impact"] in ("serious", "critical"):
                        problems.append(f"{view}/{suffix}: {v['id']} {v['help']} {[n['target'] for n in v['nodes']][:3]}")
    assert problems == [], "\n".join(problems)
