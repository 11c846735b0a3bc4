"""No module of the package imports from a layer above its own, as
``docs/architecture.md`` orders the layers; imports inside functions count too."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "medsam"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def documented_layers() -> list[set[str]]:
    """The units of each layer (``io``, ``checkpoint``, ...), bottom first: the
    backticked names in the parentheses after each numbered bold title of the page's
    "Layers" section."""
    text = ARCHITECTURE.read_text()
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in section.splitlines():
        found = re.match(r"\d+\. \*\*[^*]+\*\* \(([^)]*)\)", line)
        if found:
            names = re.findall(r"`([\w.]+?)(?:/|\.py)`", found.group(1))
            layers.append(set(names))
    return layers


def unit_of(parts: list[str]) -> str:
    """The unit (top-level module or subpackage of medsam) of a dotted path inside it."""
    name = parts[0]
    if name == "__version__":
        return "_version"
    if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file():
        return name
    import medsam

    return medsam._LAZY[name].split(".")[1]   # a public name of the package root


def imports_of(source: str, package: list[str]) -> set[str]:
    """The units of medsam that a module (its ``source``, in subpackage ``package``, e.g.
    ``["io"]``) imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            found |= {unit_of(target)} if target else {unit_of([a.name]) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "medsam":
            rest = node.module.split(".")[1:]
            found |= {unit_of(rest)} if rest else {unit_of([a.name]) for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {unit_of(a.name.split(".")[1:]) for a in node.names
                      if a.name.startswith("medsam.")}
    return found


def test_the_page_names_every_unit_of_the_package_once():
    layers = documented_layers()
    named = [unit for layer in layers for unit in layer]
    units = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir()
                                                       if (p / "__init__.py").is_file()}
    assert len(named) == len(set(named)) and set(named) == units


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above_its_own(path):
    level = {unit: i for i, layer in enumerate(documented_layers()) for unit in layer}
    rel = path.relative_to(PACKAGE)
    mine = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    above = sorted(unit for unit in imports_of(path.read_text(), list(rel.parent.parts)) if level[unit] > level[mine])
    assert not above, f"{rel} (layer {level[mine]}) imports {above} from above"


def test_an_upward_import_is_caught():
    """The check sees a local import inside a function (the form that hides cycles), in
    each import form."""
    source = (PACKAGE / "io" / "geometry.py").read_text()
    assert "cli" not in imports_of(source, ["io"])
    for late in ("from ..cli import main", "from medsam.cli import main", "import medsam.cli.segment",
                 "from .. import cli"):
        assert "cli" in imports_of(source + f"\n\ndef _late():\n    {late}\n", ["io"]), late
    assert imports_of("from . import load_model", []) == {"loading"}


def _module_imports() -> dict[str, set[str]]:
    """Module -> the modules of medsam it imports anywhere in its body (type-checking imports
    too), package ``__init__`` files left out (they only re-export)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] != "__init__":
            modules[".".join(parts)] = path

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "medsam":
                base = node.module
            else:
                continue
            targets = [known(f"{base}.{a.name}") or known(base) for a in node.names]
            found |= {t for t in targets if t and t != name}
        graph[name] = found
    return graph


def test_no_two_modules_import_each_other_even_through_others():
    """No import loop among the package's modules, however long (issue 35 found two:
    ``io/dicom_seg`` <-> ``io/dispatch`` and ``evaluation/experts`` <-> ``plots``)."""
    graph = _module_imports()
    state: dict[str, int] = {}
    loops = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loops.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not loops, "import loops: " + "; ".join(" -> ".join(loop) for loop in loops)
