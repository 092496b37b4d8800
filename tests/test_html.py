"""The HTML page without a browser: its colours, its policy, its escaping, and predict's streamed page."""
import base64
import hashlib
import io
import re

from nerctl.inference import html
from nerctl.inference.output import render, write_stream


def luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance."""
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_type_colour_passes_wcag_aa_with_the_text_on_it():
    assert len(set(html.PALETTE)) == len(html.PALETTE)
    assert min(contrast(colour, html.TEXT_COLOUR) for colour in html.PALETTE) >= 4.5
    assert f"--ink: {html.TEXT_COLOUR}" in html.style()


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_policy_allows_exactly_the_pages_own_script_and_style():
    page = "".join(html.static_page("t", {}, [[{"text": "a", "entities": []}]]))
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    policy = html.content_security_policy(live=False)
    assert len(scripts) == 1 and len(styles) == 1
    assert f"script-src {sha256(scripts[0])};" in policy and f"style-src {sha256(styles[0])};" in policy
    assert "default-src 'none'" in policy and "connect-src 'none'" in policy and "unsafe" not in policy
    assert "connect-src 'self'" in html.content_security_policy(live=True)
    assert html.html.escape(policy) in page  # the static page carries it in a <meta>


def test_the_script_has_no_html_sink():
    """Text reaches the page through textContent only (the browser tests check that it shows literally)."""
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in html.script(), sink


def test_records_in_the_page_cannot_close_their_block():
    text = "</script><script>alert(1)</script> & <!-- \u2028"
    block = html.records_block([{"text": text}])
    assert block.count("</script>") == 1 and "<!--" not in block and "\u2028" not in block
    inner = block[block.index(">") + 1:block.rindex("</script>")]
    import json

    assert json.loads(inner) == [{"text": text}]


class Counting(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushed = []

    def flush(self):
        self.flushed.append(self.getvalue())


def test_predict_html_streams_a_block_of_records_a_chunk(trained_run):
    from nerctl.api import load

    tagger = load(trained_run)
    texts = [f"have you seen jaws {i}" for i in range(70)]
    sink = Counting()
    assert write_stream(tagger, texts, sink, "html", chunk_size=32) == 70
    page = sink.getvalue()
    assert [int(n) for n in re.findall(r'class="nerctl-records" data-count="(\d+)"', page)] == [32, 32, 6]
    # Each chunk reached the sink before the next was tagged: the first flush holds one block, no script yet.
    assert sink.flushed[0].count("nerctl-records") == 1 and "<script>" not in sink.flushed[0]
    assert page.endswith("</html>\n")
    whole = render(tagger.tag_texts(texts), "html", tagger)  # in memory: one block of all the records
    assert re.findall(r'data-count="(\d+)"', whole) == ["70"] and whole.startswith(page[:page.index("<main>")])
    assert '"model":"tiny"' in page and '"types":[' in page
