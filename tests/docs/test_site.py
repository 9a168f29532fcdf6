"""The documentation site, looked at as a reader would: built, served on 127.0.0.1, opened in headless Chromium.

The site is built from mkdocs.yml with ``--strict`` into a temporary folder, served by ``http.server`` on a free
port of 127.0.0.1 and opened with Playwright driving the system's Chromium (Debian's ``chromium`` package through
``executable_path``; Playwright's own browser builds cannot be downloaded here, and are not needed). The home page,
every model card and the API pages must load with no console error, no failed request and no uncaught exception,
and every figure on them must be drawn (``naturalWidth > 0``). A screenshot of one model card is kept in
``test-artifacts/`` (gitignored) for a human to look at. The test skips, saying why, where Chromium, Playwright or
MkDocs is absent; ``.ci/run`` installs all three.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
MODEL_CARDS = sorted(p.stem for p in (REPO / "docs" / "models").glob("*.md"))
PAGES = ["index.html", "api.html", "reference/cxrzoo.html", *(f"models/{card}.html" for card in MODEL_CARDS)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason='the docs extra is not installed (pip install -e ".[docs]")')
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(REPO / "mkdocs.yml"), "-d", out],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: a free port
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.mark.loopback
def test_pages_load_and_draw_their_figures(server):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason='Playwright is not installed (pip install -e ".[docs]")'
    )
    problems: list[str] = []
    figures = 0
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            current = {"url": ""}
            page.on(
                "console",
                lambda m: (
                    problems.append(f"{current['url']}: console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"{current['url']}: uncaught {e}"))
            page.on(
                "requestfailed",
                lambda r: problems.append(f"{current['url']}: request failed {r.url} ({r.failure})"),
            )
            page.on(
                "response",
                lambda r: problems.append(f"{current['url']}: HTTP {r.status} {r.url}") if r.status >= 400 else None,
            )
            for name in PAGES:
                current["url"] = name
                # networkidle: the browser's own requests (the favicon) finish before the next page aborts them
                response = page.goto(f"{server}/{name}", wait_until="networkidle")
                assert response is not None and response.ok, f"{name}: {response and response.status}"
                images = page.evaluate(
                    "() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
                )
                for src, complete, width in images:
                    figures += 1
                    if not (complete and width > 0):
                        problems.append(f"{name}: figure {src} is not drawn (naturalWidth {width})")
                if name == "models/cxrnet.html":
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "model_card_cxrnet.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert figures >= 1, "no figure found on the home page, the model cards or the API pages"
    assert (ARTIFACTS / "model_card_cxrnet.png").stat().st_size > 10_000
