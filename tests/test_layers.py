"""The package's layers and the one direction imports flow between them (docs/development.md's code map).

Every import counts: at module level, inside a function, under TYPE_CHECKING.
A layer imports only itself and the layers listed before it.
"""
import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nerctl"

# Lowest first. config is the options declared once; api the Python API the commands call.
LAYERS = ("core", "data", "config", "modeling", "artifacts", "inference", "evaluation", "training", "api", "spark",
          "serving", "cli")
# The package's own entry files sit above every layer.
ROOT_FILES = ("__init__.py", "__main__.py", "spark/submit.py")


def module_name(path: Path) -> str:
    parts = ("nerctl",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The nerctl modules `path` imports, as absolute dotted names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "nerctl"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "nerctl":
                continue
            # `from .pkg import module` imports the module; `from .module import name` the module
            modules = {f"{target}.{a.name}" for a in node.names if (PACKAGE.parent / f"{target}.{a.name}".replace(
                ".", "/")).with_suffix(".py").exists() or (PACKAGE.parent / f"{target}.{a.name}".replace(".", "/")).is_dir()}
            found |= modules or {target}
    return found


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name (None for the package root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    stray = [str(p.relative_to(PACKAGE)) for p in package_files()
             if str(p.relative_to(PACKAGE)) not in ROOT_FILES and layer_of(module_name(p)) not in LAYERS]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


def test_imports_flow_one_way():
    """A layer imports only itself and the layers below it (e.g. data imports no model, inference no training)."""
    wrong = []
    for path in package_files():
        if str(path.relative_to(PACKAGE)) in ROOT_FILES:
            continue
        here = LAYERS.index(layer_of(module_name(path)))
        for target in sorted(imports_of(path)):
            there = layer_of(target)
            if there is not None and LAYERS.index(there) > here:
                wrong.append(f"{path.relative_to(PACKAGE)} ({LAYERS[here]}) imports {target} ({there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    """No module reaches itself through its imports (lazy and TYPE_CHECKING ones included)."""
    graph = {module_name(p): imports_of(p) for p in package_files()}
    # A submodule importing its package's __init__ is how Python loads it anyway; not a cycle of ours.
    graph = {m: {t for t in ts if t in graph and not m.startswith(t + ".")} for m, ts in graph.items()}
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles, cycles


def test_tensorflow_only_in_the_keras_engine_within_inference():
    """Inference reaches TensorFlow (and the transformers model code) through the keras engine alone."""
    heavy_packages = {"tensorflow", "transformers", "tf_keras"}
    heavy_names = {"import_tensorflow", "precision_policy"}  # modeling.runtime's functions that import it
    allowed = PACKAGE / "inference" / "engines" / "keras.py"
    offenders = []
    for path in sorted((PACKAGE / "inference").rglob("*.py")):
        if path == allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hits = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
                if a.name.split(".")[0] in heavy_packages}
        hits |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module
                 and n.module.split(".")[0] in heavy_packages}
        hits |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names if a.name in heavy_names}
        hits |= {m for m in imports_of(path) if m == "nerctl.modeling.model"}
        if hits:
            offenders.append(f"{path.relative_to(PACKAGE)}: {sorted(hits)}")
    assert not offenders, offenders


def test_tagging_modules_import_no_tensorflow():
    """Loading every inference module (engines included) and the formats leaves TensorFlow unimported."""
    modules = sorted(module_name(p) for p in (PACKAGE / "inference").rglob("*.py") if p.name != "keras.py")
    code = (f"import sys\nfor m in {modules!r} + ['nerctl.data.formats', 'nerctl.evaluation.scoring']:\n"
            "    __import__(m)\n"
            "print(sorted(m for m in ('tensorflow', 'transformers', 'tf_keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_the_code_map_names_every_module():
    """docs/development.md's code map lists each module by its path under nerctl/ (and no module that is gone)."""
    text = (PACKAGE.parent / "docs" / "development.md").read_text(encoding="utf-8")
    paths = {str(p.relative_to(PACKAGE)) for p in package_files()}
    missing = sorted(p for p in paths if p not in text)
    assert not missing, f"modules not in docs/development.md's code map: {missing}"
    named = set(re.findall(r"\b((?:[a-z_]+/)*[a-z_]+\.py)\b", text.split("```")[1] if "```" in text else text))
    gone = sorted(p for p in named if "/" in p and p not in paths and not p.startswith(("tests/", "benchmarks/")))
    assert not gone, f"the code map names modules that do not exist: {gone}"
