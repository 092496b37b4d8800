"""nerctl's HTML page: the one `nerctl serve` answers at GET /, and the static pages of
`predict --format html` and `evaluate --errors N --format html`.

Every page is one self-contained file (no CDN, no font or script from elsewhere) built
from assets/page.css and assets/page.js: the script renders records with textContent
only, so whatever a text holds shows as text. The Content-Security-Policy (a header
from the server, a <meta> in a static page) allows the page's own inline script and
style by hash and nothing else. A static page carries its records in JSON blocks of
a chunk each (written as they are tagged: memory stays flat) that the script parses
only when a page of them is shown, so 10,000 texts open as fast as 50.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
from importlib import resources
from typing import Iterable

# One background per entity type (in the order of the model's sorted types, wrapping
# around), light enough that TEXT_COLOUR on it passes WCAG AA (4.5:1; tests/test_html.py).
PALETTE = ("#ffd7a8", "#c7e9ff", "#d5f5c8", "#f9c9e4", "#e3d5ff", "#fff1a8", "#c8f1ec", "#ffd0cc",
           "#dfe7c1", "#d9dcf7", "#f3dcc5", "#cfe3d4", "#f0d0f7", "#d6ecf5", "#e6e6e6", "#fbe0b8")
TEXT_COLOUR = "#1b1b1b"
PAGE_SIZE = 50  # texts drawn at a time: a page of 10,000 stays as quick as one of 50


@functools.cache
def _asset(name: str) -> str:
    return resources.files("nerctl.inference").joinpath("assets", name).read_text(encoding="utf-8")


@functools.cache
def style() -> str:
    """page.css and one rule per palette colour."""
    rules = "".join(f"mark.ent.t{i} {{ background: {colour}; }}\n" for i, colour in enumerate(PALETTE))
    return _asset("page.css") + rules


def script() -> str:
    return _asset("page.js")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(live: bool) -> str:
    """The page's own script and style, nothing else; the served page may call its own server.

    Trusted Types are required, so even a future HTML sink in the script would throw, not run."""
    return "; ".join((
        "default-src 'none'", f"script-src {_sha256(script())}", f"style-src {_sha256(style())}",
        "img-src data:", "connect-src 'self'" if live else "connect-src 'none'",
        "base-uri 'none'", "form-action 'none'", "require-trusted-types-for 'script'"))


def script_json(data) -> str:
    """JSON that is safe inside <script type="application/json">: no '<' (so no '</script>'), no '&'."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


_BODY = """<body>
<a class="skip" href="#results">Skip to the results</a>
<header>
<h1>nerctl <span id="model-name"></span></h1>
<dl class="facts" id="facts" aria-label="Model"></dl>
</header>
<main>
<section id="input" hidden aria-label="Texts to tag">
<label for="texts">Texts to tag, one per line</label>
<textarea id="texts" rows="4" spellcheck="false" placeholder="have you seen The dark night trilogy"></textarea>
<div class="row">
<button id="tag" type="button">Tag</button>
<span class="hint">or <kbd>Ctrl</kbd>+<kbd>Enter</kbd> in the text box</span>
<span id="key-row" class="row" hidden><label for="api-key">API key</label>
<input id="api-key" type="password" autocomplete="off" spellcheck="false"></span>
</div>
</section>
<section class="row" aria-label="Display">
<label for="min-score">Minimum score</label>
<input id="min-score" type="range" min="0" max="1" step="0.01" value="0" aria-describedby="min-score-hint">
<output id="min-score-value" for="min-score">0.00</output>
<span id="min-score-hint" class="hint">entities scored under it are shown as plain text</span>
<span><input id="show-scores" type="checkbox"> <label for="show-scores">Show scores</label></span>
</section>
<section aria-labelledby="legend-title">
<h2 id="legend-title">Entity types</h2>
<ul class="legend" id="legend"></ul>
</section>
<div id="status" role="status" aria-live="polite"></div>
<div id="error" role="alert"></div>
<p id="shown" class="hint"></p>
<nav id="pager" class="row" aria-label="Pages" hidden>
<button id="first" type="button" class="quiet">First</button>
<button id="prev" type="button" class="quiet">Previous</button>
<span><label for="page">Page</label> <input id="page" type="number" min="1" value="1"> <span id="pages"></span></span>
<button id="next" type="button" class="quiet">Next</button>
<button id="last" type="button" class="quiet">Last</button>
</nav>
<ol class="results" id="results"></ol>
</main>
"""


def page_head(title: str, config: dict, live: bool = False) -> str:
    """The page up to its records: head, controls, and the script's configuration."""
    meta = "" if live else (f'<meta http-equiv="Content-Security-Policy" '
                            f'content="{html.escape(content_security_policy(False))}">\n')
    config = {"palette_size": len(PALETTE), "page_size": PAGE_SIZE, "mode": "live" if live else "static", **config}
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{meta}'
            f'<title>{html.escape(title)}</title>\n<link rel="icon" href="data:,">\n<style>{style()}</style>\n'
            f'</head>\n{_BODY}<script type="application/json" id="nerctl-config">{script_json(config)}</script>\n')


def records_block(records: list[dict]) -> str:
    """One chunk of records, parsed by the page only when it shows one of them."""
    return (f'<script type="application/json" class="nerctl-records" data-count="{len(records)}">'
            f"{script_json(records)}</script>\n")


def page_tail() -> str:
    return f"<script>{script()}</script>\n</body>\n</html>\n"


def live_page(auth: bool) -> str:
    """GET / of `nerctl serve`: type texts, tag them with /v1/ner; `auth`: ask for the API key first."""
    return page_head("nerctl", {"auth": auth}, live=True) + page_tail()


def static_page(title: str, config: dict, chunks: Iterable[list[dict]]) -> Iterable[str]:
    """A static page of records, piece by piece (a chunk of records at a time)."""
    yield page_head(title, config)
    for records in chunks:
        yield records_block(records)
    yield page_tail()
