"""Hyper-parameter dataclasses built from plain dicts (YAML, a checkpoint's JSON header), checked on the way in.

``from_dict`` is how every configuration enters caloforge: a family's model config from a run file or a checkpoint,
and the trainer's own sections. Unknown keys, non-numbers in numeric fields and values out of a field's range are
refused in one line naming where they came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from typing import Any

from caloforge.checks import Check
from caloforge.errors import CaloforgeError


def checked(check: Check, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that ``check`` guards whenever the dataclass is built (see ``Checked``)."""
    return field(default=default, metadata={"check": check})


class Checked:
    """Base of the config dataclasses: each ``checked`` field is validated on construction, so a bad value is
    refused in one line naming its allowed range before any data is read or model built."""

    def __post_init__(self) -> None:
        for entry in dataclasses.fields(self):
            if "check" in entry.metadata:
                entry.metadata["check"](entry.name, getattr(self, entry.name))


def _number(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the number a field typed ``hint`` holds. YAML 1.1 reads ``3e-4`` (no dot) as a string, and
    an int where a float goes is fine; anything else that is not a number is refused."""
    kinds = set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else {hint}
    if float not in kinds and int not in kinds or value is None or isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CaloforgeError(f"{where}: {value!r} is not a number") from None
    if float in kinds:
        return number
    if not number.is_integer():
        raise CaloforgeError(f"{where}: {value!r} is not a whole number")
    return int(number)


def as_mapping(values: Any, where: str) -> dict:
    """``values`` if it is a YAML mapping (``key: value`` lines); a list or a scalar is refused."""
    if not isinstance(values, dict):
        raise CaloforgeError(f"{where}: must be a mapping of key: value (got {type(values).__name__} {values!r:.60})")
    return values


def from_dict(cls: type, values: dict, where: str) -> Any:
    """Build dataclass ``cls`` from a dict, refusing unknown keys, non-numbers in numeric fields and values out of
    a field's range with a one-line error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(as_mapping(values, where)) - names
    if unknown:
        raise CaloforgeError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                             f"known: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    values = {key: _number(value, hints[key], f"{where}: {key}") for key, value in values.items()}
    try:
        return cls(**values)
    except (TypeError, CaloforgeError) as err:
        raise CaloforgeError(f"{where}: {err}") from None
