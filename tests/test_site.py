"""The built HTML book in a real browser (headless Chromium through Playwright).

Runs after `make book` (`make site-test`); skipped, with the reason shown, when the book is not
built or Chromium is missing. CI installs Chromium, so there it always runs. VARHYPER_SITE names
another built site to test (`make student-test` sets it to the student edition).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("VARHYPER_SITE") or ROOT / "_build" / "html").resolve()
SHOTS = HTML.parent / "screenshots"
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


def _new_page(browser, base: str, external: set):
    """A browser page on which every request outside the local server fails (no internet)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            external.add(urlparse(r.request.url).netloc)
            r.abort()

    page.route("**/*", route)
    return page


def _visit(browser, url: str, base: str, screenshot: Path | None = None) -> dict:
    """Open a page with external requests blocked; return its errors, links and images."""
    errors, external = [], set()
    page = _new_page(browser, base, external)
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


# Raw TeX that a reader would see where MathJax did not typeset: the delimiters Sphinx writes around
# math, $$, and control words (\lambda, \begin) where a formula escaped MyST's math parsing (a line
# inside $...$ that Markdown read as a list item) or a title with math became plain link text.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\[A-Za-z]{2,}")

MATH_JS = """async () => {
    const started = Boolean(window.MathJax && MathJax.startup && MathJax.startup.promise);
    let typeset = false;
    if (started) {
        const timeout = new Promise(resolve => setTimeout(() => resolve(false), 20000));
        typeset = await Promise.race([MathJax.startup.promise.then(() => true), timeout]);
    }
    const main = document.querySelector('main') || document.body;
    const math = [...main.querySelectorAll('span.math, div.math')];
    // Undefined macros (\\KL without the book's macros) render as red text, not as an error.
    const items = typeset ? [...MathJax.startup.document.math] : [];
    const broken = items.filter(m => /<merror|mathcolor="red"/.test(MathJax.startup.toMML(m.root)))
        .map(m => m.math);
    // The visible text of the page, code excepted (code may show TeX on purpose).
    const code = [...main.querySelectorAll('pre, code')];
    code.forEach(e => { e.dataset.display = e.style.display; e.style.display = 'none'; });
    const text = main.innerText;
    code.forEach(e => { e.style.display = e.dataset.display; });
    return {
        started, typeset, text, broken,
        math: math.length,
        untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)),
        containers: main.querySelectorAll('mjx-container').length,
        kl: typeset ? MathJax.tex2mml('\\\\KL') : '',
    };
}"""


def test_math_is_typeset_offline(server, browser):
    """Every page: MathJax (shipped with the build) typesets every formula with no internet."""
    problems, pages_with_math = [], 0
    for path in _pages():
        rel = path.relative_to(HTML).as_posix()
        if 'http-equiv="refresh"' in path.read_text(encoding="utf8").lower():
            continue  # index.html only redirects to the first page, which is tested itself
        external: set = set()
        page = _new_page(browser, server, external)
        page.goto(urljoin(server, rel), wait_until="load")
        info = page.evaluate(MATH_JS)
        page.close()
        raw = list(RAW_TEX.finditer(info["text"]))
        for m in raw[:3]:
            context = info["text"][max(0, m.start() - 40) : m.end() + 40].replace("\n", " ")
            problems.append(f"{rel}: raw TeX {m.group()!r} in the visible text ({len(raw)} in all): ...{context}...")
        if not info["math"]:
            continue
        pages_with_math += 1
        if not info["typeset"]:
            blocked = f" (blocked requests to {', '.join(sorted(external))})" if external else ""
            problems.append(f"{rel}: {info['math']} formulas but MathJax did not start{blocked}")
            continue
        if info["containers"] == 0 or info["untypeset"]:
            problems.append(f"{rel}: formulas without an mjx-container: {info['untypeset'][:3]}")
        if info["broken"]:
            problems.append(f"{rel}: MathJax errors or undefined macros in {info['broken'][:3]}")
        if "KL" not in info["kl"] or 'mathcolor="red"' in info["kl"]:
            problems.append(f"{rel}: the KL macro of _config.yml is not defined: {info['kl']}")
    assert not problems, "\n".join(problems)
    assert pages_with_math > 0, "no page has math: the check above checked nothing"
