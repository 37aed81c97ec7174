"""Write (or check) the published artefacts: ``schemas/**.json`` and ``asyncapi.json``.

    python -m funmagic_contracts.export            # write them next to this package's pyproject.toml
    python -m funmagic_contracts.export --check    # exit 1 if the committed files differ from the models
    python -m funmagic_contracts.export --out DIR  # write under DIR instead

Writing refuses (exit 1) to replace a committed schema with an incompatible one, listing the breakages:
publish a new event version instead. ``--force`` overrides that, for a schema that was never published (not
yet merged). A committed schema whose model is gone is reported, never deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from funmagic_contracts.asyncapi import build_asyncapi
from funmagic_contracts.compat import schema_breakages
from funmagic_contracts.schemas import dump_json, render_schemas

__all__ = ["ASYNCAPI_FILE", "SCHEMAS_DIR", "default_root", "main", "render_files"]

SCHEMAS_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.json"


def render_files() -> dict[str, str]:
    """Every exported file's text by path relative to the contracts project root."""
    files = {f"{SCHEMAS_DIR}/{path}": dump_json(schema) for path, schema in render_schemas().items()}
    files[ASYNCAPI_FILE] = dump_json(build_asyncapi())
    return files


def default_root() -> Path | None:
    """``libs/contracts`` when running from its source tree (``src/funmagic_contracts/...``), else None."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "funmagic-contracts"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def _committed_schemas(root: Path) -> set[str]:
    folder = root / SCHEMAS_DIR
    if not folder.is_dir():
        return set()
    return {f"{SCHEMAS_DIR}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*.json")}


def check(root: Path, files: dict[str, str]) -> list[str]:
    """Differences between the committed files under ``root`` and ``files``."""
    problems = []
    for path, text in files.items():
        target = root / path
        if not target.is_file():
            problems.append(f"{path}: missing")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the models")
    for path in sorted(_committed_schemas(root) - set(files)):
        problems.append(f"{path}: committed but no model exports it (restore the model)")
    return problems


def write(root: Path, files: dict[str, str], *, force: bool) -> tuple[list[str], list[str]]:
    """Write ``files`` under ``root``; returns (written, problems). Writes nothing if there are problems."""
    problems = []
    for path, text in files.items():
        target = root / path
        if force or not path.startswith(f"{SCHEMAS_DIR}/") or not target.is_file():
            continue
        old = json.loads(target.read_text(encoding="utf-8"))
        problems.extend(f"{path}: {b}" for b in schema_breakages(old, json.loads(text)))
    for path in sorted(_committed_schemas(root) - set(files)):
        problems.append(
            f"{path}: committed but no model exports it (restore the model, or delete it by hand)"
        )
    if problems:
        return [], problems
    written = []
    for path, text in files.items():
        target = root / path
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(path)
    return written, []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m funmagic_contracts.export", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, help="folder to write schemas/ and asyncapi.json into")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if anything differs")
    parser.add_argument("--force", action="store_true", help="replace committed schemas even if incompatible")
    args = parser.parse_args(argv)
    root = args.out if args.out is not None else default_root()
    if root is None:
        parser.error("not running from the libs/contracts source tree; pass --out")
    files = render_files()
    if args.check:
        problems = check(root, files)
        if problems:
            print(f"{len(problems)} exported file(s) out of date under {root}:", file=sys.stderr)
            for line in problems:
                print(f"  - {line}", file=sys.stderr)
            print("Run `python -m funmagic_contracts.export` and commit the result.", file=sys.stderr)
            return 1
        print(f"up to date: {len(files)} file(s) under {root}")
        return 0
    written, problems = write(root, files, force=args.force)
    if problems:
        print(f"refusing to export, {len(problems)} problem(s):", file=sys.stderr)
        for line in problems:
            print(f"  - {line}", file=sys.stderr)
        print(
            "Publish a new event version instead of changing a published one (--force if never published).",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {len(written)} of {len(files)} file(s) under {root}")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
