"""The package's imports point one way: no module imports, directly or through others, one that imports it, and every
import goes to a module of the same layer or a lower one (the layer map of src/covbench/__init__.py)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "covbench"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the covbench modules it imports anywhere in its file (a call-time import counts as well)."""
    modules = {module_name(path, package): path for path in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        # a package imports its own submodules to register them (components/__init__): not an edge back
        graph[name] = {t for t in targets if t in modules and t != name and not t.startswith(name + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_a_cycle_put_back_is_found(tmp_path):
    package = tmp_path / "covbench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "report.py").write_text("from covbench.analysis import summary\n")
    (package / "analysis.py").write_text("def summary():\n    from covbench.report import words\n")
    (package / "data.py").write_text("import covbench.analysis\n")
    assert cycles(import_graph(package)) == [["covbench.analysis", "covbench.report"]]


# The layer of each part of the package (src/covbench/__init__.py): a module may import only from its own layer or a
# lower one. Keys are the top-level modules and packages; a package's modules all have its layer.
LAYERS = {
    "covbench": 0,
    "covbench.atomic": 0,
    "covbench.jobs": 0,
    "covbench.subnormals": 0,
    "covbench.data": 1,
    "covbench.components": 2,
    "covbench.models": 2,
    "covbench.config": 3,
    "covbench.training": 4,
    "covbench.analysis": 5,
    "covbench.report": 6,
    "covbench.tools": 7,
}


def layer_of(module: str) -> int | None:
    """The layer of a module: that of its top-level module or package (covbench.report.macros.setup -> report's)."""
    parts = module.split(".")
    return LAYERS.get(".".join(parts[:2]))


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """'a (layer i) imports b (layer j)' for every import from a lower layer to a higher one, and every module
    that has no layer (a new top-level module or package must be given one)."""
    found = [
        f"{module} has no layer: add its top-level module or package to LAYERS"
        for module in sorted(graph)
        if layer_of(module) is None
    ]
    for module in sorted(graph):
        for target in sorted(graph[module]):
            source_layer, target_layer = layer_of(module), layer_of(target)
            if None not in (source_layer, target_layer) and target_layer > source_layer:
                found.append(f"{module} (layer {source_layer}) imports {target} (layer {target_layer})")
    return found


def test_every_import_points_to_the_same_layer_or_a_lower_one():
    assert layer_violations(import_graph()) == []


def test_an_upward_import_is_found(tmp_path):
    package = tmp_path / "covbench"
    (package / "analysis").mkdir(parents=True)
    (package / "report").mkdir()
    for init in ("__init__.py", "analysis/__init__.py", "report/__init__.py"):
        (package / init).write_text("")
    (package / "report" / "tables.py").write_text("from covbench.analysis.compare import CI_LEVEL\n")
    (package / "analysis" / "compare.py").write_text("def verdict():\n    from covbench.report import tables\n")
    (package / "extra.py").write_text("")
    assert layer_violations(import_graph(package)) == [
        "covbench.extra has no layer: add its top-level module or package to LAYERS",
        "covbench.analysis.compare (layer 5) imports covbench.report (layer 6)",
        "covbench.analysis.compare (layer 5) imports covbench.report.tables (layer 6)",
    ]


# A function of training/ takes at most this many parameters: one job's settings travel as one record
# (covbench.training.settings.JobSettings), not as a dozen loose arguments.
MAX_PARAMETERS = 8


def crowded_functions(package: Path) -> list[str]:
    """'module.function: N parameters' for every function with more than MAX_PARAMETERS (self and *args included)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                count = len(args.posonlyargs + args.args + args.kwonlyargs) + bool(args.vararg) + bool(args.kwarg)
                if count > MAX_PARAMETERS:
                    found.append(f"{path.relative_to(package).with_suffix('')}.{node.name}: {count} parameters")
    return found


def test_no_training_function_takes_more_than_eight_parameters():
    assert crowded_functions(PACKAGE / "training") == []


def test_a_crowded_function_is_found(tmp_path):
    (tmp_path / "loop.py").write_text(
        "def run(a, b, c, d, e, f, g, h, *, i=1):\n    pass\n\ndef ok(a, *rest):\n    pass\n"
    )
    assert crowded_functions(tmp_path) == ["loop.run: 9 parameters"]
