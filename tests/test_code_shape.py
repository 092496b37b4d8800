"""The shape of the code that keeps it easy to change: short functions, one declaration per option and choice."""
import ast
import dataclasses
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from nerctl.core import choices
from nerctl.cli import app
from nerctl.config import TrainConfig, env_name, resolve_config

PACKAGE = Path(__file__).resolve().parent.parent / "nerctl"
MAX_FUNCTION_LINES = 80


def modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(PACKAGE.rglob("*.py"))]


def test_no_function_is_longer_than_80_lines():
    long = [f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in modules() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


def train_command():
    return typer.main.get_command(app).commands["train"]


def test_every_config_field_has_a_train_option_an_env_name_and_help():
    params = {p.name: p for p in train_command().params}
    shown = " ".join(CliRunner().invoke(app, ["train", "--help"], terminal_width=10_000).stdout.split())
    for f in dataclasses.fields(TrainConfig):
        assert f.name in params, f"TrainConfig.{f.name} has no train option"
        help_text = params[f.name].help or ""
        assert f.metadata["help"] in help_text and f"[env: {env_name(f)}" in help_text, f.name
        assert " ".join(help_text.split()) in shown, f.name
        if f.metadata["choices"]:
            assert "<" + "|".join(f.metadata["choices"]) + ">" in shown, f.name


def test_every_train_option_reaches_the_config(tmp_path):
    """Each generated option, given on the command line, lands in the resolved config (parsed by click itself)."""
    command = train_command()
    for f in dataclasses.fields(TrainConfig):
        param = next(p for p in command.params if p.name == f.name)
        default = f.default
        if f.metadata["choices"]:
            value = next(c for c in f.metadata["choices"] if c != default)
            args = [param.opts[0], value]
        elif param.is_flag:
            value = not default
            args = [(param.opts if value else param.secondary_opts)[0]]
        elif f.type.startswith("int"):
            value = default + 1
            args = [param.opts[0], str(value)]
        elif f.type.startswith("float"):
            value, args = 0.5, [param.opts[0], "0.5"]
        else:
            value, args = "somename", [param.opts[0], "somename"]
        parsed = command.make_context("train", args).params
        options = {k: v.value if hasattr(v, "value") else v for k, v in parsed.items() if k in
                   {g.name for g in dataclasses.fields(TrainConfig)}}
        assert resolve_config(None, options, environ={}).to_dict()[f.name] == value, f.name


def test_each_choice_list_is_declared_once():
    """No module but choices.py spells out one of its tuples (or a list of the same values)."""
    declared = {tuple(getattr(choices, name)) for name in dir(choices) if name.isupper()}
    found = []
    for path, tree in modules():
        if path.name == "choices.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) > 1 and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                values = tuple(e.value for e in node.elts)
                if values in declared:
                    found.append(f"{path.name}:{node.lineno} {values}")
    assert not found, found


def test_run_files_are_opened_by_rundir_alone():
    """config.json, summary.json and labels.json have one reader and writer: RunDir's methods."""
    opened = re.compile(r"\.(config|summary|labels)\.(read_text|read_bytes|open|write_text)\(|LabelMap\.load\(")
    offenders = [f"{path.name}:{number}" for path, _ in modules() if path.name not in ("rundir.py", "tags.py")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if opened.search(line)]
    assert not offenders, offenders
