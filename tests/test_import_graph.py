"""The import graph of `sora_hf` (parsed with `ast`, nothing imported) has no cycle, lazy imports included."""

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "sora_hf"
PACKAGE = PACKAGE_DIR.name


def module_names() -> dict[str, Path]:
    """Dotted name -> file of every module in the package (`pkg.__init__` is named `pkg`)."""
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = [PACKAGE, *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def is_type_checking_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` (imports only a type checker runs)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.AST):
    """Every import statement, at module level or inside a function, outside `if TYPE_CHECKING:` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif is_type_checking_block(node):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `name` imports: `from a import b` counts `a.b` when it is a module, else `a`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in import_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if submodule in modules:
                found.add(submodule)
            elif source in modules:
                found.add(source)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = module_names()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def top_level_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between `sora_hf`'s top-level modules and subpackages (a subpackage stands for all its modules)."""

    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    collapsed: dict[str, set[str]] = {top(name): set() for name in graph}
    for name, targets in graph.items():
        collapsed[top(name)].update(top(target) for target in targets if top(target) != top(name))
    return collapsed


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_within(graph, set(component)) for component in components]


def cycle_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest import cycle through the first module of a strongly connected component, start repeated at the end."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    next_frontier.append(target)
        frontier = next_frontier
    raise AssertionError(f"no cycle through {start}")


def test_graph_sees_relative_lazy_and_absolute_imports():
    graph = import_graph()
    assert "sora_hf.training.losses.base" in graph["sora_hf.training.losses.fgm"]
    assert "sora_hf.robustness" in graph["sora_hf.training.trainer"]  # imported inside a method


def test_find_cycles_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


def format_cycles(cycles: list[list[str]]) -> str:
    """One line per cycle: `a -> b -> a`."""
    return "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_package_import_graph_has_no_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, f"import cycles between modules of sora_hf:\n{format_cycles(cycles)}"


def test_subpackages_depend_one_way():
    """E.g. `training` may use `robustness`, but then `robustness` must not use `training`."""
    cycles = find_cycles(top_level_graph(import_graph()))
    assert not cycles, f"import cycles between the subpackages of sora_hf:\n{format_cycles(cycles)}"
