import ast
import sys
from pathlib import Path

import funmagic_contracts

PACKAGE = Path(funmagic_contracts.__file__).parent
ALLOWED_THIRD_PARTY = {"pydantic", "pydantic_core", "funmagic_contracts"}
# Only the two command lines touch files; nothing in the package touches the network or other processes.
FILE_IO_MODULES = {"export.py", "compat.py"}
IO_IMPORTS = {"socket", "subprocess", "urllib", "http", "asyncio", "ssl", "shutil", "tempfile", "sqlite3"}
IO_CALLS = {
    "open",
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "mkdir",
    "unlink",
    "rglob",
    "glob",
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def called_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_the_package_imports_only_the_standard_library_and_pydantic():
    for path in modules():
        roots = imported_roots(ast.parse(path.read_text(encoding="utf-8")))
        foreign = {r for r in roots if r not in sys.stdlib_module_names and r not in ALLOWED_THIRD_PARTY}
        assert not foreign, f"{path.name} imports {foreign}"


def test_nothing_but_the_command_lines_does_io():
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not imported_roots(tree) & IO_IMPORTS, path.name
        if path.name not in FILE_IO_MODULES:
            assert not called_names(tree) & IO_CALLS, path.name
            assert "pathlib" not in imported_roots(tree), path.name


def test_every_public_module_declares_its_names_explicitly():
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declared = [
            node
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            and any(
                getattr(t, "id", None) == "__all__"
                for t in getattr(node, "targets", [getattr(node, "target", None)])
            )
        ]
        assert declared, f"{path.relative_to(PACKAGE)} has no __all__"
