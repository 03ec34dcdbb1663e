"""The built HTML book in a real browser (headless Chromium through Playwright).

Runs after `make book` (`make site-test`); skipped, with the reason shown, when the book is not
built or Chromium is missing. CI installs Chromium, so there it always runs.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run",
        "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.skipif(not (HTML / "index.html").exists(), reason="the book is not built: run `make book` first"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
]


def _pages() -> list[Path]:
    skip = {"genindex.html", "search.html"}
    return sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and p.name not in skip)


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _visit(browser, url: str, base: str, screenshot: Path | None = None) -> dict:
    """Open a page with external requests blocked; return its errors, links and images."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, external = [], set()

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            external.add(urlparse(r.request.url).netloc)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

    def console(msg):
        # Failed loads of blocked external resources (CDNs) are expected offline; anything else counts.
        if msg.type == "error" and not ("net::ERR_FAILED" in msg.text or "Failed to load resource" in msg.text):
            errors.append(msg.text)

    page.on("console", console)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    info = page.evaluate(
        """() => ({
            links: [...document.querySelectorAll('a[href]')].map(a => a.href),
            images: [...document.querySelectorAll("img")]
                .map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
            figures: [...document.querySelectorAll('.cell_output img')].filter(i => i.naturalWidth > 0).length,
        })"""
    )
    if screenshot is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    page.close()
    return {"errors": errors, "external": external, **info}


def _target_exists(link: str, base: str) -> bool:
    path = unquote(urlparse(link).path).lstrip("/")
    target = HTML / path
    if target.is_dir():
        target = target / "index.html"
    return target.exists()


def test_every_page_links_images_and_console(server, browser):
    problems = []
    for page in _pages():
        rel = page.relative_to(HTML).as_posix()
        shot = None
        if rel == "intro.html":
            shot = SHOTS / "intro.png"
        elif rel == "chapters/06_mnist_study.html":
            shot = SHOTS / "mnist_study.png"
        info = _visit(browser, urljoin(server, rel), server, shot)
        problems += [f"{rel}: console error: {e}" for e in info["errors"]]
        for link in info["links"]:
            if link.startswith(server) and not _target_exists(link, server):
                problems.append(f"{rel}: broken internal link {link}")
        problems += [f"{rel}: image did not load: {i['src']}" for i in info["images"] if not i["ok"]
                     and i["src"].startswith(server)]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert (SHOTS / "intro.png").exists()


def test_chapters_show_figures_and_colab_links(server, browser):
    chapters = sorted((HTML / "chapters").glob("*.html"))
    assert chapters, "no chapter pages were built"
    problems = []
    for page in chapters:
        rel = page.relative_to(HTML).as_posix()
        info = _visit(browser, urljoin(server, rel), server)
        if info["figures"] == 0:
            problems.append(f"{rel}: no executed figure is shown")
        colab = [link for link in info["links"] if "colab.research.google.com" in link]
        if not colab:
            problems.append(f"{rel}: no Open-in-Colab link")
        for link in colab:
            nb = link.split("/blob/main/", 1)[-1]
            if not (link.startswith("https://colab.research.google.com/github/") and (ROOT / nb).exists()):
                problems.append(f"{rel}: Colab link does not point at a notebook of this repository: {link}")
    assert not problems, "\n".join(problems)
