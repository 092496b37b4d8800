"""The documentation, kept honest: README.md, docs/*.md and benchmarks/README.md.

Their ```python blocks run as written (on the tiny fixture model), every
`nerctl ...` line of their shell blocks parses with the real command line,
every relative link points to a file (and heading) inside the repository, and
the README stays a short front door.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import typer

from nerctl.cli import app
from nerctl.data.formats import read_corpus
from conftest import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]
README_MAX_LINES = 250

FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.S | re.M)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}


def page_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def blocks(path: Path, languages: set[str]) -> list[str]:
    """The bodies of `path`'s fenced code blocks in one of `languages`, in order."""
    return [body for language, body in FENCE.findall(path.read_text(encoding="utf-8")) if language in languages]


def prose(path: Path) -> str:
    """`path`'s text without fenced blocks and inline code (where a link is only an example)."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return re.sub(r"`[^`\n]*`", "", text)


# --- the python blocks run ------------------------------------------------------------------------

# What a page's blocks print, in part: a page whose blocks ran but did nothing would not show it.
PRINTED = {
    "docs/python-api.md": ["'entities'", "no such file"],
    "docs/scaling-out.md": ["'type': 'TITLE'"],
    "docs/run-directory.md": ["['"],
}
PYTHON_PAGES = [p for p in PAGES if blocks(p, {"python"})]
# Blocks that start Spark run in tests/test_spark.py (a JVM, the `spark` marker); a block for an engine
# nerctl does not install (Ray) runs where it is installed.
SPARK_BLOCK = re.compile(r"^(?:from|import) (?:pyspark|nerctl\.spark)\b", flags=re.M)
OPTIONAL_MODULES = ("ray",)


def runs_here(block: str) -> bool:
    """Whether test_python_examples_run runs `block` (see SPARK_BLOCK and OPTIONAL_MODULES)."""
    import importlib.util

    missing = [m for m in OPTIONAL_MODULES if re.search(rf"^import {m}\b", block, flags=re.M)
               and importlib.util.find_spec(m) is None]
    return not SPARK_BLOCK.search(block) and not missing


def test_the_python_api_page_has_its_examples():
    assert len(blocks(REPO / "docs" / "python-api.md", {"python"})) >= 2
    assert set(PRINTED) <= {page_id(p) for p in PYTHON_PAGES}


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_python_examples_run(page, tiny_model, bio_files, trained_run, tmp_path, monkeypatch, capsys):
    """A page's python blocks, run as written in one namespace (as in one session: later blocks use the
    first one's imports), on the tiny model: the NERCTL_* variables point there, `data/test.bio` is a
    fixture file and `runs/latest` a finished tiny run."""
    (tmp_path / "data").mkdir()
    shutil.copy(bio_files["test"], tmp_path / "data" / "test.bio")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(trained_run, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for name, value in {"MODEL": tiny_model, "TRAIN_FILE": bio_files["train"], "EVAL_FILE": bio_files["dev"],
                        "TEST_FILE": bio_files["test"], "MAX_LEN": 32, "LR": 5e-3, "WARMUP_RATIO": 0,
                        "FREEZE_EMBEDDINGS": "false", "RUNS_ROOT": tmp_path / "runs"}.items():
        monkeypatch.setenv(f"NERCTL_{name}", str(value))
    namespace: dict = {}
    for block in filter(runs_here, blocks(page, {"python"})):
        exec(compile(block, page_id(page), "exec"), namespace)
    printed = capsys.readouterr().out
    for expected in PRINTED.get(page_id(page), []):
        assert expected in printed, printed
    if page_id(page) == "docs/python-api.md":  # its nerctl.train made a run, and runs/latest moved to it
        latest = (tmp_path / "runs" / "latest").resolve()
        assert latest != trained_run.resolve() and (latest / "summary.json").exists()


# --- the README is a front door -------------------------------------------------------------------

def test_readme_is_under_250_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


# --- links ----------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", flags=re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", flags=re.I)  # https:, mailto:, ...


def github_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives `path`'s headings: lower case, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))  # a link's text only
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def links(path: Path) -> list[str]:
    text = prose(path)
    return LINK.findall(text) + REFERENCE.findall(text)


def test_the_pages_have_links():
    """The link pattern finds links (so the test below cannot pass on nothing)."""
    assert "docs/commands.md" in links(README) and "benchmarks/README.md" in links(README)
    for page in PAGES[1:]:
        assert "../README.md" in links(page), f"{page_id(page)} has no link back to the README"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_point_inside_the_repository(page):
    repo = REPO.resolve()
    wrong = []
    for target in links(page):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        if path.startswith("/"):
            wrong.append(f"{target}: an absolute path")
            continue
        resolved = (page.parent / path).resolve() if path else page.resolve()
        if not resolved.is_relative_to(repo):
            wrong.append(f"{target}: outside the repository")
        elif not resolved.exists():
            wrong.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in github_anchors(resolved):
            wrong.append(f"{target}: no heading #{anchor} in {resolved.relative_to(repo)}")
    assert not wrong, f"{page_id(page)}:\n" + "\n".join(wrong)


# --- shell lines parse ------------------------------------------------------------------------------

OPERATORS = {"|", "||", "&&", ";", "&", "|&"}
REDIRECTIONS = {">", ">>", "<", "<<", ">&", "<&", "&>", ">|"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PROCESS_SUBSTITUTION = re.compile(r"<\([^)]*\)")


def shell_lines(path: Path) -> list[str]:
    """The command lines of `path`'s shell blocks: continued lines joined; in console blocks, the `$ ` lines."""
    found = []
    for language, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if language not in SHELL_LANGUAGES:
            continue
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            if language == "console":
                if not line.startswith("$ "):
                    continue  # output
                line = line[2:]
            found.append(line.strip())
    return found


def nerctl_commands(line: str) -> list[list[str]]:
    """The argument lists of the `nerctl` commands in a shell line, as the shell would pass them.

    Comments are dropped; the line is cut into commands at pipes, `&&` and `;`; a command stops at its first
    redirection; `VAR=value` prefixes are dropped, and a process substitution `<(...)` is a path, as in bash.
    """
    lexer = shlex.shlex(PROCESS_SUBSTITUTION.sub("/dev/fd/63", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in list(lexer) + [";"]:
        if token in OPERATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    found = []
    for words in commands:
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words or words[0] != "nerctl":
            continue
        args = []
        for word in words[1:]:
            if word in REDIRECTIONS:
                break
            args.append(word)
        if args and args[-1].isdigit() and len(words) > len(args) + 1:  # `2>`: the 2 belongs to the redirection
            args = args[:-1]
        found.append(args)
    return found


def usage_error_class() -> type[Exception]:
    """click's UsageError, as the typer in use raises it (typer may vendor its own click)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def parse_problem(args: list[str]) -> str | None:
    """Why `nerctl ARGS` would not parse (None if it does), by the real command's own parser; nothing runs."""
    command = typer.main.get_command(app)
    top_options = {opt for param in command.params for opt in param.opts}
    while args and args[0].startswith("-"):
        if args[0] not in top_options:
            return f"no top-level option {args[0]}"
        args = args[1:]
    if not args:
        return None
    if args[0] not in command.commands:
        return f"no command {args[0]!r}"
    sub = command.commands[args[0]]
    try:
        sub.make_context(args[0], args[1:], resilient_parsing=False)
    except usage_error_class() as err:
        return f"{type(err).__name__}: {err.format_message()}"
    return None


SHELL_PAGES = [p for p in PAGES if any(nerctl_commands(line) for line in shell_lines(p))]


def test_nerctl_command_lines_are_found():
    """The extraction finds the examples (so the test below cannot pass on nothing)."""
    commands = [args for page in PAGES for line in shell_lines(page) for args in nerctl_commands(line)]
    assert len(commands) >= 40
    assert {args[0] for args in commands if args} >= {
        "download", "train", "evaluate", "predict", "report", "runs", "export", "serve", "convert", "check"}
    assert nerctl_commands("cat q.txt | NERCTL_X=1 nerctl predict - > out.jsonl  # note") == [["predict", "-"]]
    assert nerctl_commands("nerctl predict --file <(cut -f2 data.tsv) 2> log") == [
        ["predict", "--file", "/dev/fd/63"]]


# No line is skipped: every `nerctl ...` line of the pages parses as written.
@pytest.mark.parametrize("page", SHELL_PAGES, ids=page_id)
def test_nerctl_command_lines_parse(page):
    wrong = []
    for line in shell_lines(page):
        for args in nerctl_commands(line):
            problem = parse_problem(args)
            if problem:
                wrong.append(f"{line}\n    {problem}")
    assert not wrong, f"{page_id(page)}:\n" + "\n".join(wrong)


def test_a_wrong_line_does_not_parse():
    assert parse_problem(["predict", "--format", "bogus", "hi"])
    assert parse_problem(["train", "--no-such-option"])
    assert parse_problem(["no-such-command"])
    assert parse_problem(["evaluate", "--errors"])  # an option without its value
    assert parse_problem(["predict", "--format", "jsonl", "hi"]) is None


# ---------------------------------------------------------------- data examples

DATA_PAGE = REPO / "docs" / "data.md"


def data_examples() -> list[tuple[str, str]]:
    """docs/data.md's sample files: (file name, text), each JSON block as the file it shows, and the BRAT lines."""
    out = []
    for number, block in enumerate(blocks(DATA_PAGE, {"json"})):
        try:
            whole = json.loads(block)  # one record printed over several lines, or a Label Studio list
        except ValueError:
            out.append((f"example{number}.jsonl", block))  # a record a line
            continue
        name = f"example{number}.json" if isinstance(whole, list) else f"example{number}.jsonl"
        out.append((name, json.dumps(whole) + "\n"))
    return out


@pytest.mark.parametrize("name, text", data_examples(), ids=[name for name, _ in data_examples()])
def test_the_sample_files_in_docs_read(tmp_path, name, text):
    """Each sample record in docs/data.md is what nerctl reads, with at least one entity."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    sentences = read_corpus(path, warn=lambda message: None)
    assert sentences and any(tag != "O" for s in sentences for tag in s.tags)


def test_the_brat_sample_in_docs_reads_against_its_text(tmp_path):
    """The .ann lines docs/data.md shows are read against the sample text they index."""
    (ann,) = [b for b in blocks(DATA_PAGE, {""}) if b.startswith("T1\t")]
    (tmp_path / "doc.txt").write_text("who directed jaws\nshow me movies with bruce willis\n", encoding="utf-8")
    (tmp_path / "doc.ann").write_text(ann, encoding="utf-8")
    first, second = read_corpus(tmp_path / "doc.ann")
    assert first.tags[-1] == "B-TITLE" and second.tags[-2:] == ("B-ACTOR", "I-ACTOR")
