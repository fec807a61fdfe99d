"""The layout rules of issue 13 that import-linter's contracts (pyproject.toml, `lint-imports` in
`make lint`) do not check: no import circles, no long module without a reason, and — belt and
braces beside the forbidden contract — no runtime import of the sandbox but the CLI's lazy one.

The import graph is grimp's, the engine import-linter runs on, built with the imports under
`if TYPE_CHECKING:` included: a circle that only the type checker walks is still a circle.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("bot", "commands", "approvals", "integrations", "core")
MAX_LINES = 300
LONG_MARK = "Long:"
# `dhanam-bot sandbox` imports the sandbox console inside the subcommand, never at start-up.
SANDBOX_IMPORTERS = frozenset({"bot/cli.py"})


def runtime_files() -> Iterator[Path]:
    for package in RUNTIME_PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*RUNTIME_PACKAGES, exclude_type_checking_imports=False, cache_dir=None)


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a deep import chain must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(sorted(graph.find_modules_directly_imported_by(root)))))
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.find_modules_directly_imported_by(succ)))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def one_cycle(graph: grimp.ImportGraph, component: list[str]) -> list[str]:
    """A shortest circle through the component's first module, as `a -> b -> ... -> a`."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph.find_modules_directly_imported_by(node)):
            if succ not in members or succ in came_from:
                continue
            came_from[succ] = node
            if succ == start:
                path = [start]
                while path[-1] != start or len(path) == 1:
                    path.append(came_from[path[-1]])
                return list(reversed(path))
            queue.append(succ)
    return component  # unreachable for a real component; still names its modules


def test_no_import_circles(graph: grimp.ImportGraph) -> None:
    circles = [
        " -> ".join(one_cycle(graph, component))
        for component in strongly_connected(graph)
        if len(component) > 1
    ]
    assert not circles, "import circles (TYPE_CHECKING imports included):\n" + "\n".join(circles)


def test_the_graph_sees_the_runtime_packages(graph: grimp.ImportGraph) -> None:
    # Guards the circle test against passing on an empty or partial graph.
    assert {module.split(".")[0] for module in graph.modules} == set(RUNTIME_PACKAGES)
    assert "approvals.flow" in graph.modules
    assert graph.find_modules_directly_imported_by("approvals.flow")


def long_reason(tree: ast.Module) -> str | None:
    docstring = ast.get_docstring(tree) or ""
    for line in docstring.splitlines():
        stripped = line.strip()
        if stripped.startswith(LONG_MARK) and stripped[len(LONG_MARK) :].strip():
            return stripped
    return None


def test_no_long_module_without_a_reason() -> None:
    unexplained = []
    for path in runtime_files():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_LINES and long_reason(ast.parse(text)) is None:
            unexplained.append(f"{relative(path)} ({lines} lines)")
    assert not unexplained, (
        f"modules over {MAX_LINES} lines need a line starting `{LONG_MARK}` in their docstring "
        "saying why they stay one module (or a split):\n" + "\n".join(unexplained)
    )


def sandbox_imports(tree: ast.Module) -> Iterator[tuple[str, int, bool]]:
    """(module imported, line, inside a function) for every import of the sandbox."""
    inside_functions = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "sandbox":
                yield name, node.lineno, id(node) in inside_functions


def test_only_the_cli_imports_the_sandbox_and_lazily() -> None:
    found: dict[str, list[tuple[str, int, bool]]] = {}
    for path in runtime_files():
        imports = list(sandbox_imports(ast.parse(path.read_text(encoding="utf-8"))))
        if imports:
            found[relative(path)] = imports
    stray = {where: imports for where, imports in found.items() if where not in SANDBOX_IMPORTERS}
    assert not stray, f"the runtime packages import the sandbox (module, line, lazily): {stray}"
    eager = [
        f"{where}:{line} {name}"
        for where, imports in found.items()
        for name, line, lazy in imports
        if not lazy
    ]
    assert not eager, f"the sandbox must be imported inside the subcommand, not at import: {eager}"
    assert found, "bot/cli.py's sandbox subcommand no longer imports the sandbox: update this test"


# -- narrow dependencies ---------------------------------------------------------------------
# A handler calls what its feature's deps object holds (`deps.locks.hold(…)`), never through it
# into someone else's parts (`deps.incidents.pager.pagerduty.acknowledge(…)`): the method goes
# where the knowledge lives, or the feature is given the part. Counted from the deps object,
# whichever way it is reached: `deps`, `*_deps`, the bot's `components`, `app[DEPS]`, or the
# `.deps` of an invocation or a click.
DEPS_NAMES = frozenset({"deps", "components"})
DEPS_HOLDERS = frozenset({"inv", "invocation", "click"})
MAX_HOPS = 2  # deps.part.method(…)
CHAIN_PACKAGES = ("commands", "bot")


def _is_deps(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in DEPS_NAMES or node.id.endswith("_deps")
    if isinstance(node, ast.Subscript):  # app[DEPS]
        return isinstance(node.slice, ast.Name) and node.slice.id == "DEPS"
    return False


def deep_calls(tree: ast.AST) -> Iterator[tuple[int, str, int]]:
    """(line, the chain, hops past the deps object) of every call reached through deps."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        names: list[str] = []
        target: ast.expr = node.func
        while isinstance(target, ast.Attribute):
            names.insert(0, target.attr)
            target = target.value
        if _is_deps(target):
            hops = names
        elif isinstance(target, ast.Name) and target.id in DEPS_HOLDERS and names[0] == "deps":
            hops = names[1:]
        else:
            continue
        yield node.lineno, ast.unparse(node.func), len(hops)


def chains(tree: ast.AST) -> list[str]:
    return [f"{line}: {chain}(…)" for line, chain, hops in deep_calls(tree) if hops > MAX_HOPS]


def test_the_chain_check_finds_a_chain() -> None:
    snippet = ast.parse(
        "async def on_acknowledge(click):\n"
        "    deps = click.deps\n"
        "    await deps.incidents.pager.pagerduty.acknowledge(incident)\n"
        "    await click.deps.flow.members.resolve(responders)\n"
        "    await inv.deps.locks.hold(scope)\n"  # two hops: the feature's own part
        "    await request.app[DEPS].incidents.store.by_channel(channel)\n"
        "    self.metrics.command_latency.labels(kind).observe(1.0)\n"  # not a deps object
        "    alarm_deps.metrics.command_latency.labels(kind).observe(1.0)\n"
    )
    assert chains(snippet) == [
        "3: deps.incidents.pager.pagerduty.acknowledge(…)",
        "4: click.deps.flow.members.resolve(…)",
        "6: request.app[DEPS].incidents.store.by_channel(…)",
        "8: alarm_deps.metrics.command_latency.labels(…)",
    ]


def test_no_call_reaches_through_a_deps_object() -> None:
    found: list[str] = []
    seen = 0
    for package in CHAIN_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            seen += sum(1 for _ in deep_calls(tree))
            found += [f"{relative(path)}:{chain}" for chain in chains(tree)]
    assert seen > 20, "the scan no longer sees the handlers' calls on their deps: update it"
    assert not found, (
        "calls through more than one part of a deps object (give the feature the part, or add "
        "the method where the knowledge lives):\n" + "\n".join(found)
    )
