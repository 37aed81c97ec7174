"""Backward-compatibility check between a published JSON Schema and its successor.

``schema_breakages(old, new)`` lists, in words that name the field, every change that would break a
consumer or make events already on a topic (kept forever) unreadable:

* a field removed; a field's type changed (including ``null`` no longer or newly accepted, and a changed
  ``format``, ``pattern`` or ``const``); an enum value removed, or a free value restricted to an enum;
* a constraint tightened (``minimum`` raised, ``maxLength`` lowered, ...);
* an optional field made required, a new required field, or a required field made optional (old consumers
  rely on it being there);
* a map or object closed to keys it used to accept.

Adding an optional field, widening an enum, loosening a constraint and changing titles, descriptions or
defaults are compatible. ``$ref``/``$defs``, ``anyOf``/``oneOf`` (``Optional``), nested objects, maps and
arrays are followed. A breaking change needs a new event version (a new ``...v2.json`` file); a published
file is only ever replaced by a compatible one.

Command line: ``python -m funmagic_contracts.compat OLD_DIR NEW_DIR`` compares every ``*.json`` under
``OLD_DIR`` with the file at the same relative path under ``NEW_DIR``; exits 1 and lists the breakages if any.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["dir_breakages", "load_schema_dir", "main", "schema_breakages"]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT = ("format", "pattern", "multipleOf", "contentEncoding", "contentMediaType")


@dataclass(frozen=True)
class _View:
    """A schema node reduced to what matters for compatibility."""

    node: dict[str, Any]  # the resolved node (the single non-null variant of an Optional)
    types: frozenset[str] | None  # None: any JSON value
    nullable: bool
    enum: tuple[Any, ...] | None  # allowed non-null values, None: unrestricted
    variants: tuple[dict[str, Any], ...]  # the non-null variants when there are several


def _type_name(types: frozenset[str] | None, nullable: bool) -> str:
    names = ["any"] if types is None else sorted(types)
    return " or ".join([*names, "null"] if nullable else names)


class _Schema:
    """One schema document, for resolving its local ``$ref``s."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def deref(self, node: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Follow ``$ref`` (and single-element ``allOf``); returns the node and the refs followed."""
        refs: list[str] = []
        while isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in refs:
                    break
                refs.append(ref)
                node = self._pointer(ref)
            elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
                node = node["allOf"][0]
            else:
                break
        if node is True or node is None:
            node = {}
        if not isinstance(node, dict):
            raise ValueError(f"unsupported schema node: {node!r}")
        return node, tuple(refs)

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ValueError(f"unresolvable $ref {ref!r}")
        return node

    def view(self, node: Any) -> tuple[_View, tuple[str, ...]]:
        node, refs = self.deref(node)
        nullable = False
        variants: list[dict[str, Any]] = []
        union = node.get("anyOf", node.get("oneOf"))
        if isinstance(union, list):
            for variant in union:
                resolved, more = self.deref(variant)
                refs += more
                if _is_null(resolved):
                    nullable = True
                else:
                    variants.append(resolved)
            if len(variants) == 1:
                node = variants[0]
        raw_type = node.get("type")
        types: set[str] | None
        if isinstance(raw_type, str):
            types = {raw_type}
        elif isinstance(raw_type, list):
            types = set(raw_type)
        else:
            types = None
        if types is not None and "null" in types:
            nullable = True
            types.discard("null")
        enum: tuple[Any, ...] | None = None
        if "const" in node:
            enum = (node["const"],)
        elif isinstance(node.get("enum"), list):
            enum = tuple(node["enum"])
        if enum is not None:
            if None in enum:
                nullable = True
                enum = tuple(v for v in enum if v is not None)
            if types is None:
                types = {_json_type(v) for v in enum}
        if types is None and ("properties" in node or "additionalProperties" in node):
            types = {"object"}
        if types is None and ("items" in node or "prefixItems" in node):
            types = {"array"}
        if len(variants) > 1:
            types = set().union(*(self.view(v)[0].types or {"any"} for v in variants))
        return _View(
            node=node,
            types=None if types is None else frozenset(types),
            nullable=nullable,
            enum=enum,
            variants=tuple(variants) if len(variants) > 1 else (),
        ), refs


def _is_null(node: dict[str, Any]) -> bool:
    return (
        node.get("type") == "null"
        or ("const" in node and node["const"] is None)
        or node.get("enum") == [None]
    )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


class _Comparison:
    def __init__(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.old = _Schema(old)
        self.new = _Schema(new)
        self.breakages: list[str] = []
        self._active: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    def report(self, path: str, message: str) -> None:
        where = f"field '{path}'" if path else "the event"
        self.breakages.append(f"{where} {message}")

    def compare(self, old_node: Any, new_node: Any, path: str) -> None:
        old, old_refs = self.old.view(old_node)
        new, new_refs = self.new.view(new_node)
        key = (old_refs, new_refs)
        if (old_refs or new_refs) and key in self._active:
            return  # a recursive definition already being compared further up this path
        self._active.append(key)
        try:
            self._compare_views(old, new, path)
        finally:
            self._active.pop()

    def _compare_views(self, old: _View, new: _View, path: str) -> None:
        if old.types != new.types or old.nullable != new.nullable:
            self.report(
                path,
                f"changed type from {_type_name(old.types, old.nullable)} "
                f"to {_type_name(new.types, new.nullable)}",
            )
            if old.types != new.types:
                return

        if old.variants or new.variants:
            if len(old.variants) != len(new.variants):
                self.report(
                    path, f"changed its union from {len(old.variants)} to {len(new.variants)} alternatives"
                )
                return
            for i, (o, n) in enumerate(zip(old.variants, new.variants, strict=True)):
                self.compare(o, n, f"{path}<{i}>")
            return

        self._compare_enum(old, new, path)
        self._compare_keywords(old.node, new.node, path)
        if "object" in (old.types or ()):
            self._compare_object(old.node, new.node, path)
        if "array" in (old.types or ()):
            self._compare_array(old.node, new.node, path)

    def _compare_enum(self, old: _View, new: _View, path: str) -> None:
        if new.enum is None:
            return  # unrestricted or widened
        if old.enum is None:
            self.report(path, f"is now restricted to {list(new.enum)!r}")
            return
        for value in old.enum:
            if value not in new.enum:
                self.report(path, f"lost the enum value {value!r}")

    def _compare_keywords(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        for word in _EXACT:
            if word in new and old.get(word) != new[word]:
                self.report(path, f"changed {word} from {old.get(word)!r} to {new[word]!r}")
            elif word == "format" and word in old and word not in new:
                self.report(path, f"changed format from {old[word]!r} to none")
        for word in _LOWER_BOUNDS:
            if word in new and (word not in old or new[word] > old[word]):
                self.report(path, f"tightened {word} from {old.get(word)!r} to {new[word]!r}")
        for word in _UPPER_BOUNDS:
            if word in new and (word not in old or new[word] < old[word]):
                self.report(path, f"tightened {word} from {old.get(word)!r} to {new[word]!r}")

    def _compare_object(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        prefix = f"{path}." if path else ""
        for name, old_prop in old_props.items():
            if name not in new_props:
                self.report(f"{prefix}{name}", "was removed")
                continue
            if name in new_required and name not in old_required:
                self.report(f"{prefix}{name}", "became required (it was optional)")
            elif name in old_required and name not in new_required:
                self.report(f"{prefix}{name}", "became optional (it was required; consumers rely on it)")
            self.compare(old_prop, new_props[name], f"{prefix}{name}")
        for name in sorted(new_required - set(old_props)):
            self.breakages.append(
                f"new required field '{prefix}{name}' "
                "(events already published do not have it; make it optional)"
            )
        self._compare_additional(old, new, path)

    def _compare_additional(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if new_extra is False:
            if old_extra is not False:
                self.report(path, "no longer accepts additional keys")
            return
        if isinstance(new_extra, dict) and new_extra:
            if isinstance(old_extra, dict):
                self.compare(old_extra, new_extra, f"{path}{{}}" if path else "{}")
            else:
                self.report(path, "now restricts the values of its additional keys")

    def _compare_array(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            self.report(path, f"changed its tuple length from {len(old_prefix)} to {len(new_prefix)}")
        for i, (o, n) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(o, n, f"{path}[{i}]")
        old_items, new_items = old.get("items", {}), new.get("items", {})
        if new_items is False and old_items is not False:
            self.report(path, "no longer accepts items")
        elif isinstance(new_items, dict) and (new_items or old_items):
            self.compare(old_items if isinstance(old_items, dict) else {}, new_items, f"{path}[]")


def schema_breakages(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every backward-incompatible difference from the published schema ``old`` to ``new``; empty if none."""
    comparison = _Comparison(old, new)
    comparison.compare(dict(old), dict(new), "")
    return comparison.breakages


def dir_breakages(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Breakages between two sets of schemas keyed by relative path; a schema missing from ``new`` is one."""
    found = []
    for path in sorted(old):
        if path not in new:
            found.append(
                f"{path}: the published schema was removed (keep the model; publish new versions beside it)"
            )
            continue
        found.extend(f"{path}: {b}" for b in schema_breakages(old[path], new[path]))
    return found


def load_schema_dir(folder: Path) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` under ``folder`` by ``/``-separated relative path."""
    return {
        path.relative_to(folder).as_posix(): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.rglob("*.json"))
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m funmagic_contracts.compat",
        description="Check that the schemas in NEW_DIR are backward compatible with those in OLD_DIR.",
    )
    parser.add_argument("old_dir", type=Path, metavar="OLD_DIR", help="the published schemas")
    parser.add_argument("new_dir", type=Path, metavar="NEW_DIR", help="the candidate schemas")
    args = parser.parse_args(argv)
    for folder in (args.old_dir, args.new_dir):
        if not folder.is_dir():
            parser.error(f"not a directory: {folder}")
    old = load_schema_dir(args.old_dir)
    breakages = dir_breakages(old, load_schema_dir(args.new_dir))
    if breakages:
        print(f"{len(breakages)} backward-incompatible change(s):", file=sys.stderr)
        for line in breakages:
            print(f"  - {line}", file=sys.stderr)
        print(
            "Publish a new event version (a new ...v<N+1>.json) instead of changing a published one.",
            file=sys.stderr,
        )
        return 1
    print(f"compatible: {len(old)} published schema(s) checked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
