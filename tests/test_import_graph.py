"""The import graph stays one-way: the contracts in pyproject.toml (``[tool.importlinter]``: layers, no cycle,
light modules free of torch) hold, and no module leads back to itself, package ``__init__`` files included.

Both read the static graph, lazy imports inside functions included; that the light CLI commands really load no
torch at run time is checked in tests/test_cli.py.
"""

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_import_contracts_are_kept(capsys):
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 0 and "Contracts: 3 kept, 0 broken." in report, report


def import_cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """Each direct import ``a -> b`` from which ``b`` leads back to ``a``, as the cycle ``(a, b, ..., a)``."""
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append((module, *back))
    return cycles


def test_no_module_leads_back_to_itself():
    # import-linter's acyclic contract compares siblings; a cycle through a package's __init__ needs this check
    assert import_cycles(grimp.build_graph("imputebench")) == []


def test_a_cycle_is_found_with_its_path():
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p"), ("p", "p.a"), ("p.a", "p.c")]:
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph)[0] == ("p", "p.a", "p.b", "p")
    assert len(import_cycles(graph)) == 3 and all(cycle[0] == cycle[-1] for cycle in import_cycles(graph))
