"""The import graph of `libs/` and `services/` has no circle: every module can be read (and imported) after
the modules it depends on, and a layer never reaches back up through a lazy import inside a function.

grimp (import-linter's graph) records every import statement, including those inside functions and under
`TYPE_CHECKING`, so a circle closed by a "lazy" import is found too.
"""

from __future__ import annotations

import grimp

PACKAGES = (
    "funmagic_contracts",
    "funmagic_kit",
    "funmagic_gateway",
    "funmagic_identity",
    "funmagic_tasks",
    "funmagic_credits",
    "funmagic_storage",
    "funmagic_providers",
)


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    circles: list[list[str]] = []
    counter = 0

    def visit(module: str) -> None:
        nonlocal counter
        # Iterative depth-first search: the graph is deep enough to matter for Python's recursion limit.
        work = [(module, iter(sorted(graph.find_modules_directly_imported_by(module))))]
        index[module] = lowlink[module] = counter
        counter += 1
        stack.append(module)
        on_stack.add(module)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = lowlink[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    lowlink[current] = min(lowlink[current], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[current])
            if lowlink[current] == index[current]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == current:
                        break
                self_import = graph.direct_import_exists(importer=current, imported=current)
                if len(group) > 1 or self_import:
                    circles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return circles


def test_no_module_of_ours_imports_itself_back_through_a_circle() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)

    circles = import_circles(graph)

    assert circles == [], "import circles:\n" + "\n".join(" ⇄ ".join(group) for group in circles)


def test_the_circle_finder_finds_a_circle_closed_by_one_import() -> None:
    graph = grimp.ImportGraph()
    for module in ("app.bootstrap", "app.cli", "app.domain"):
        graph.add_module(module)
    graph.add_import(importer="app.bootstrap", imported="app.cli")
    graph.add_import(importer="app.cli", imported="app.domain")
    assert import_circles(graph) == []

    graph.add_import(importer="app.cli", imported="app.bootstrap")  # the lazy import inside a command

    assert import_circles(graph) == [["app.bootstrap", "app.cli"]]
