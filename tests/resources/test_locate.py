"""locate: a pydantic error's location mapped to the field and line of the YAML that caused it."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from llorch.resources import parse_object
from llorch.resources.locate import Location, locate

POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: demo
spec:
  model: tiny-llama
  replicas: 1
"""


def errors_of(text: str) -> list[tuple[ErrorDetails, Location]]:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    with pytest.raises(ValidationError) as raised:
        parse_object(yaml.safe_load(text))
    return [(error, locate(node, error)) for error in raised.value.errors(include_url=False)]


def located(text: str) -> list[tuple[str | None, int]]:
    return [(at.field, at.line) for _, at in errors_of(text)]


def test_a_bad_value_points_at_its_key() -> None:
    assert located(POOL.replace("replicas: 1", "replicas: -1")) == [("spec.replicas", 7)]


def test_an_unknown_field_points_at_the_unknown_key() -> None:
    assert located(POOL + "  gpus:\n    count: 1\n    colour: red\n") == [("spec.gpus.colour", 10)]


def test_union_member_tags_stay_out_of_the_field() -> None:
    text = POOL + "  gpus:\n    count: 1\n    devices:\n      - 0\n      - 1.5\n"
    found = errors_of(text)
    # devices are str | int: one error per member, each location ending in the member's tag.
    assert {error["loc"][-1] for error, _ in found} == {"str", "int"}
    assert [(at.field, at.line) for _, at in found] == [("spec.gpus.devices.1", 12)] * 2


def test_a_missing_field_keeps_its_name_and_points_at_its_parent() -> None:
    assert located(POOL.replace("  name: demo\n", "  labels: {}\n")) == [("metadata.name", 3)]


def test_a_model_validator_error_points_at_its_object() -> None:
    assert located(POOL + "  gpus:\n    count: 2\n    devices: [0]\n") == [("spec.gpus", 8)]


def test_the_last_of_repeated_keys_is_the_one_pointed_at() -> None:
    assert located(POOL + "  replicas: -2\n") == [("spec.replicas", 8)]


def detail(loc: tuple[int | str, ...], kind: str = "value_error") -> ErrorDetails:
    return ErrorDetails(type=kind, loc=loc, msg="bad", input=None)


def test_steps_the_document_lacks() -> None:
    node = yaml.compose("a:\n  - x\n  - y\nb: 1\n", Loader=yaml.SafeLoader)
    assert locate(node, detail(())) == Location(None, 1)
    assert locate(node, detail(("a", 1))) == Location("a.1", 3)
    assert locate(node, detail(("a", 5))) == Location("a", 1), "past the end of the list"
    assert locate(node, detail(("a", "0"))) == Location("a", 1), "a sequence takes indexes only"
    assert locate(node, detail(("b", 0))) == Location("b", 4), "a scalar has no children"
    assert locate(node, detail(("c",))) == Location(None, 1)
    assert locate(node, detail(("c",), "missing")) == Location("c", 1)


def test_a_mapping_key_is_matched_as_text_only() -> None:
    node = yaml.compose("0: zero\n'1': one\n", Loader=yaml.SafeLoader)
    assert locate(node, detail(("1",))) == Location("1", 2)
    assert locate(node, detail((0,))) == Location(None, 1), "an index does not name a mapping key"
