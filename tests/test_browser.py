"""The pages in a real headless Chromium (Debian's, `make chromium`), driven by Playwright.

The served page (GET / of a real `nerctl serve`) and the static pages of
`predict --format html` and `evaluate --errors N --format html`: no console error,
no request outside the server, what the DOM shows is what the API answered, text
is never markup, 10,000 texts stay usable, the keyboard reaches every control, and
axe-core finds no serious accessibility violation. Screenshots go to
$NERCTL_SCREENSHOTS (docs/images with `make screenshots RUN=runs/NAME`).
"""
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerctl.cli import app
from nerctl.inference.html import static_page
from test_serve import Server

pytestmark = [pytest.mark.browser, pytest.mark.subprocess]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror="alert(2)">', '"><svg onload=alert(3)>']
SENTENCES = ["have you seen the dark knight", "show me films with tom hanks from the 1980s",
             "who directed jaws", "any good science fiction movies with harrison ford"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium: make chromium")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class Watched:
    """A page with its console errors, page errors, dialogs and requests recorded."""

    def __init__(self, browser, width=1100, height=800):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors, self.dialogs, self.requests = [], [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def marks(self) -> list[tuple[int, str, str, int, int]]:
        """(text number, type, shown text, start, end) of every highlight in the results."""
        return [tuple(m) for m in self.page.eval_on_selector_all("#results li.result mark.ent", """marks => marks.map(m => [
            Number(m.closest('li').dataset.index), m.dataset.type, m.querySelector('.ent-text').textContent,
            Number(m.dataset.start), Number(m.dataset.end)])""")]

    def texts(self) -> list[str]:
        """Each result's text as shown: its text nodes and its highlights' words (not their type and score)."""
        return self.page.eval_on_selector_all("#results p.text", """ps => ps.map(p => [...p.childNodes].map(
            n => n.nodeType === Node.TEXT_NODE ? n.data : n.querySelector('.ent-text').textContent).join(''))""")

    def serious_violations(self) -> list[str]:
        from axe_playwright_python.sync_playwright import Axe

        violations = Axe().run(self.page).response["violations"]
        return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in violations
                if v["impact"] in ("serious", "critical")]


def shots_folder(tmp_path) -> Path:
    folder = Path(os.environ.get("NERCTL_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def served_run(trained_run):
    return Path(os.environ.get("NERCTL_SCREENSHOT_RUN") or trained_run)


@pytest.fixture(scope="module")
def server(served_run):
    served = Server(served_run)
    yield served
    served.stop()


def expected_marks(records: list[dict]) -> list[tuple[int, str, str, int, int]]:
    return [(i, e["type"], e["text"], e["start"], e["end"]) for i, r in enumerate(records) for e in r["entities"]]


def test_the_served_page_shows_what_the_api_answers(browser, server):
    watched = Watched(browser)
    watched.page.goto(server.url + "/")
    watched.page.wait_for_selector("#facts dd")
    watched.page.fill("#texts", "\n".join(SENTENCES))
    watched.page.press("#texts", "Control+Enter")
    watched.page.wait_for_selector("#results li.result")
    status, answer, _ = server.request("POST", "/v1/ner", {"texts": SENTENCES})
    assert status == 200
    assert watched.marks() == expected_marks(answer["results"])
    assert watched.texts() == SENTENCES
    facts = watched.page.text_content("#facts")
    assert server.request("GET", "/v1/model")[1]["model"] in facts
    assert not watched.errors and not watched.dialogs
    assert all(url.startswith(server.url + "/") for url in watched.requests), watched.requests
    assert watched.serious_violations() == []


def test_hostile_text_runs_nothing_and_shows_literally(browser, server):
    watched = Watched(browser)
    watched.page.goto(server.url + "/")
    watched.page.fill("#texts", "\n".join(HOSTILE))
    watched.page.click("#tag")
    watched.page.wait_for_selector("#results li.result")
    assert watched.texts() == HOSTILE
    assert watched.page.query_selector_all("#results script, #results img, #results svg") == []
    assert not watched.dialogs and not watched.errors


def test_offsets_stay_right_in_any_script(browser, tmp_path):
    """Highlights over emoji, combining marks, RTL and markup cover exactly text[start:end] (code points)."""
    texts = ["🎬 Tom Hanks in 🍿 Big", "e\u0301te\u0301 with Zoe\u0308 Kravitz", "فيلم العراب من إخراج كوبولا",
             "<b>Jaws</b> &amp; Spielberg", "a " * 5000 + "Tom Hanks"]
    records = []
    for text in texts:
        entities = []
        for word, kind in (("Tom Hanks", "ACTOR"), ("Zoe\u0308 Kravitz", "ACTOR"), ("كوبولا", "DIRECTOR"),
                           ("<b>Jaws</b>", "TITLE"), ("Big", "TITLE")):
            if word in text:
                start = text.index(word)
                entities.append({"type": kind, "text": word, "start": start, "end": start + len(word), "score": 0.9})
        records.append({"text": text, "entities": sorted(entities, key=lambda e: e["start"])})
    page = tmp_path / "scripts.html"
    page.write_text("".join(static_page("t", {"types": ["ACTOR", "DIRECTOR", "TITLE"]}, [records])), encoding="utf-8")
    watched = Watched(browser)
    watched.page.goto(page.as_uri())
    assert watched.marks() == [(i, t, text[s:e], s, e) for i, t, text, s, e in
                               [(i, e["type"], r["text"], e["start"], e["end"])
                                for i, r in enumerate(records) for e in r["entities"]]]
    assert not watched.errors and not watched.dialogs


@pytest.fixture(scope="module")
def big_page(served_run, tmp_path_factory) -> Path:
    """`predict --format html` of 10,000 texts, streamed to a file."""
    folder = tmp_path_factory.mktemp("big")
    lines = folder / "texts.txt"
    lines.write_text("".join(f"{SENTENCES[i % len(SENTENCES)]} {i}\n" for i in range(10_000)), encoding="utf-8")
    out = folder / "page.html"
    result = CliRunner().invoke(app, ["predict", "--run", str(served_run), "-f", str(lines), "--format", "html",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_static_page_of_10000_texts_opens_pages_and_scrolls(browser, big_page):
    watched = Watched(browser)
    watched.page.goto(big_page.as_uri(), timeout=60_000)
    assert watched.page.text_content("#shown") == "Texts 1\u201350 of 10,000"
    assert len(watched.page.query_selector_all("#results li.result")) == 50  # drawn a page at a time
    watched.page.click("#last")
    assert watched.page.text_content("#shown") == "Texts 9,951\u201310,000 of 10,000"
    assert watched.texts()[-1] == f"{SENTENCES[9_999 % len(SENTENCES)]} 9999"
    watched.page.mouse.wheel(0, 20_000)
    assert watched.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(window.scrollY)))") > 0
    assert not watched.errors and not watched.requests[1:], watched.requests[1:]  # only the file itself
    assert watched.serious_violations() == []


def test_the_keyboard_reaches_every_control(browser, server):
    watched = Watched(browser)
    page = watched.page
    page.goto(server.url + "/")
    page.wait_for_selector("#facts dd")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the skip link
    page.keyboard.type(SENTENCES[0])
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results li.result")
    reached = []
    for _ in range(14):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id || document.activeElement.textContent"))
    assert {"tag", "min-score", "show-scores", "Copy JSON", "JSON record"} <= set(reached), reached
    page.focus("#min-score")
    before = page.input_value("#min-score")
    page.keyboard.press("ArrowRight")
    assert float(page.input_value("#min-score")) > float(before)
    assert page.text_content("#min-score-value") == f"{float(page.input_value('#min-score')):.2f}"


def test_with_an_api_key_the_page_asks_for_it_and_keeps_it_in_memory(browser, trained_run):
    key = "s3cret-key"
    server = Server(trained_run, env={"NERCTL_API_KEY": key})
    try:
        watched = Watched(browser)
        page = watched.page
        page.goto(server.url + "/")
        assert page.is_visible("#api-key")
        page.fill("#texts", SENTENCES[0])
        page.click("#tag")
        page.wait_for_selector("#error:not(:empty)")
        assert "API key" in page.text_content("#error")
        page.fill("#api-key", key)
        page.press("#api-key", "Tab")
        page.click("#tag")
        page.wait_for_selector("#results li.result")
        stored = page.evaluate("() => [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage),"
                               " location.href]")
        assert all(key not in value for value in stored)
    finally:
        server.stop()


def test_evaluate_errors_as_a_page_shows_gold_beside_predicted(browser, trained_run, bio_files, tmp_path):
    wrong_gold = tmp_path / "wrong.bio"  # the tiny model tags its test file right: make its gold wrong
    wrong_gold.write_text(bio_files["test"].read_text(encoding="utf-8").replace("B-TITLE\tjaws", "O\tjaws"),
                          encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--file", str(wrong_gold),
                                      "--errors", "5", "--format", "html"])
    assert result.exit_code == 0, result.output
    page_file = tmp_path / "errors.html"
    page_file.write_text(result.stdout, encoding="utf-8")
    watched = Watched(browser)
    watched.page.goto(page_file.as_uri())
    sides = watched.page.query_selector_all("#results .side")
    assert sides and len(sides) <= 5
    assert watched.page.query_selector_all("#results mark.wrong")  # "jaws" is predicted, not gold
    assert "wrong" in watched.page.text_content("#results mark.wrong")
    assert not watched.errors and watched.serious_violations() == []


def test_screenshots(browser, server, big_page, tmp_path):
    folder = shots_folder(tmp_path)
    for name, width in (("page-desktop.png", 1100), ("page-narrow.png", 360)):
        watched = Watched(browser, width=width, height=760)
        watched.page.goto(server.url + "/")
        watched.page.wait_for_selector("#facts dd")
        watched.page.fill("#texts", "\n".join(SENTENCES[:3]))
        watched.page.press("#texts", "Control+Enter")
        watched.page.wait_for_selector("#results li.result")
        assert watched.page.evaluate("() => document.documentElement.scrollWidth") <= width  # no sideways scroll
        watched.page.screenshot(path=str(folder / name))
    watched = Watched(browser, height=760)
    watched.page.goto(big_page.as_uri(), timeout=60_000)
    watched.page.screenshot(path=str(folder / "predict-html.png"))
    assert all((folder / name).stat().st_size > 1000 for name in ("page-desktop.png", "page-narrow.png",
                                                                  "predict-html.png"))
