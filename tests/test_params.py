"""graphret.params: declared fields are checked by validate()."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from graphret.errors import InputError
from graphret.params import base_type, param, validate


@dataclass(frozen=True)
class _Config:
    name: str | int | None = param(None, help="a name or an index, or none")
    count: int | None = param(None, min=1, help="how many")
    level: float = param(0.5, min=0, max=1, help="a share")

    def __post_init__(self) -> None:
        validate(self)


def test_a_union_with_none_is_optional():
    assert base_type(_Config, "name") == (str | int, True)
    assert base_type(_Config, "count") == (int, True)
    assert base_type(_Config, "level") == (float, False)
    assert _Config().name is None and _Config(name=3).name == 3 and _Config(name="x").name == "x"


def test_bounds_and_types_name_the_field():
    for bad, match in ((dict(count=0), "count must be at least 1"), (dict(count=1.5), "count must be a whole number"),
                       (dict(level=2.0), "level must be at most 1"), (dict(level=None), "level needs a value")):
        with pytest.raises(InputError, match=match):
            _Config(**bad)
