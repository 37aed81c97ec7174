"""Whether a reply model keeps everything a service answers: the check behind the gateway's contract tests.

`Reply` models ignore members they do not declare, so a field a service adds would silently never reach a
client. `undeclared_members(model, body)` lists, recursively, each member of a real answer that the model
has no field for (`items[].config.steps[].provider`: `[]` stands for every element of a list or value of
a mapping); `assert_reply_covers` fails naming them, unless they are listed as deliberately withheld.
Pure: it reads a model's fields and a parsed JSON body.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["assert_reply_covers", "undeclared_members"]


def assert_reply_covers(model: type[BaseModel], body: object, *, withheld: Collection[str] = ()) -> None:
    """`body` (a service's JSON answer) validates as `model`, and `model` declares every member of it
    except the paths in `withheld` (and what lies below them)."""
    model.model_validate(body)
    dropped = [
        path for path in undeclared_members(model, body) if not any(_within(path, w) for w in withheld)
    ]
    if dropped:
        raise AssertionError(
            f"{model.__name__} would drop {', '.join(dropped)} of the service's answer: declare "
            "the member on the reply model, or list it as withheld where hiding it is the point"
        )


def undeclared_members(model: type[BaseModel], body: object) -> list[str]:
    """The paths of the members of `body` that `model` has no field for, once each, in the body's order."""
    return list(dict.fromkeys(_undeclared_in_model(model, body, "")))


def _undeclared_in_model(model: type[BaseModel], body: object, path: str) -> Iterator[str]:
    if not isinstance(body, Mapping) or model.model_config.get("extra") == "allow":
        return
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        fields[name] = field.annotation
        if field.alias:
            fields[field.alias] = field.annotation
    for key, value in body.items():
        member = f"{path}.{key}" if path else str(key)
        if key not in fields:
            yield member
        else:
            yield from _undeclared_in_value(fields[key], value, member)


def _undeclared_in_value(annotation: Any, value: object, path: str) -> Iterator[str]:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(value, Mapping):
            yield from _undeclared_in_model(option, value, path)
            return
        origin, args = typing.get_origin(option), typing.get_args(option)
        if isinstance(value, Mapping) and _is_subclass(origin, Mapping) and len(args) == 2:
            for item in value.values():
                yield from _undeclared_in_value(args[1], item, f"{path}[]")
            return
        if isinstance(value, list | tuple) and _is_subclass(origin, Collection) and args:
            for item in value:
                yield from _undeclared_in_value(args[0], item, f"{path}[]")
            return
    # Any, a plain type, or a shape the annotation does not describe (validation speaks of that).


def _options(annotation: Any) -> list[Any]:
    """The types a value of `annotation` may be: `Annotated` unwrapped, unions flattened, None left out."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [o for arg in typing.get_args(annotation) for o in _options(arg)]
    return [] if annotation is type(None) else [annotation]


def _is_subclass(origin: object, kinds: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, kinds)


def _within(path: str, withheld: str) -> bool:
    return path == withheld or path.startswith(f"{withheld}.") or path.startswith(f"{withheld}[")
