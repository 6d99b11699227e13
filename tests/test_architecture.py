"""The map in docs/architecture.md, enforced: every import between the package's parts points the way
the map allows (the harness never imports the search, the proposers or the run; the proposers never
import the harness or the run; the model imports nothing of the project), nothing imports the CLI,
and no module outgrows a few hundred lines."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "evo_kernels"

# part -> the parts it may import (a part is a top-level module or folder of the package).
ALLOWED = {
    "model": set(),
    "config": {"model"},
    "store": {"model"},
    "search": {"model", "config"},
    "proposers": {"model", "config"},
    "harness": {"model", "config"},
    "cluster": {"model", "config", "harness"},
    "report": {"model", "store"},
    "run": {"model", "config", "store", "search", "proposers", "cluster"},
    "cli": {"model", "config", "store", "harness", "cluster", "run", "report"},
    "__main__": {"cli"},
    "__init__": set(),
}
MAX_LINES = 600


def part_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def imports_of(path: Path) -> set[str]:
    """Project modules a file imports (absolute names), at any depth in the file."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    if parts[-1] == "__init__":
        package = parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
                found.add(name)
                if not node.module:  # from . import x: x is a module of the package
                    found.update(f"{name}.{a.name}" for a in node.names)
            elif node.module and node.module.split(".")[0] == "evo_kernels":
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "evo_kernels")
    return {m for m in found if m.startswith("evo_kernels.") and m.count(".") >= 1}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        yield path, ".".join(p for p in rel.parts if p != "__init__") if rel.parts[-1] == "__init__" else ".".join(rel.parts)


def test_every_part_is_on_the_map():
    parts = {part_of(name) for _, name in modules() if name != "evo_kernels"}
    assert parts <= set(ALLOWED), f"parts not on the map: {sorted(parts - set(ALLOWED))}"


def test_imports_follow_the_map():
    wrong = []
    for path, name in modules():
        mine = part_of(name) if name != "evo_kernels" else "__init__"
        for target in imports_of(path):
            theirs = part_of(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"{name} imports {target} ({mine} -> {theirs})")
    assert not wrong, "imports the map forbids:\n" + "\n".join(wrong)


def test_the_map_in_the_docs_is_this_one():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for part, allowed in ALLOWED.items():
        if part in ("__main__", "__init__"):
            continue
        line = next((l for l in text.splitlines() if l.startswith(f"| `{part}`")), None)
        assert line is not None, f"docs/architecture.md has no row for {part}"
        cell = line.split("|")[3]
        named = {w.strip("` ,") for w in cell.split() if w.strip("` ,")} - {"nothing", "-"}
        assert named == allowed, f"{part}: the docs say {sorted(named)}, the test {sorted(allowed)}"


def test_no_module_outgrows_its_room():
    long = [f"{name}: {len(path.read_text().splitlines())} lines" for path, name in modules()
            if len(path.read_text().splitlines()) > MAX_LINES]
    assert not long, long
