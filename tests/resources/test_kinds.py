from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llorch.resources import KindError, Model, Policy, Pool, kind_for, parse_object, plural


def pool_doc(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llorch.dev/v1",
        "kind": "Pool",
        "metadata": {"name": "demo"},
        "spec": {"model": "m", **spec},
    }


def test_pool_defaults_and_camel_case_round_trip() -> None:
    pool = parse_object(pool_doc(replicas=2, slots=4, engineArgs=["--flash-attn", "on"]))
    assert isinstance(pool, Pool)
    assert pool.spec.replicas == 2 and pool.spec.engine_args == ["--flash-attn", "on"]
    wire = pool.to_wire()
    assert wire["spec"]["engineArgs"] == ["--flash-attn", "on"]
    assert parse_object(wire) == pool


def test_unknown_field_is_an_error_with_its_location() -> None:
    with pytest.raises(ValidationError) as info:
        parse_object(pool_doc(replica=2))
    assert [e["loc"] for e in info.value.errors()] == [("spec", "replica")]


@pytest.mark.parametrize("name", ["Demo", "-demo", "demo-", "a" * 64, "de_mo", ""])
def test_names_must_be_dns_labels(name: str) -> None:
    doc = pool_doc()
    doc["metadata"]["name"] = name
    with pytest.raises(ValidationError):
        parse_object(doc)


def test_labels_are_checked() -> None:
    doc = pool_doc()
    doc["metadata"]["labels"] = {"tier": "has space"}
    with pytest.raises(ValidationError):
        parse_object(doc)


def test_bad_numbers_are_rejected() -> None:
    for spec in ({"replicas": -1}, {"slots": 0}, {"context": 10}):
        with pytest.raises(ValidationError):
            parse_object(pool_doc(**spec))


def test_gpu_pins_must_cover_count() -> None:
    with pytest.raises(ValidationError, match="pins 1 GPU"):
        parse_object(pool_doc(gpus={"count": 2, "devices": [0]}))


def test_model_source_is_exactly_one() -> None:
    base = {"apiVersion": "llorch.dev/v1", "kind": "Model", "metadata": {"name": "m"}}
    with pytest.raises(ValidationError, match="exactly one"):
        parse_object({**base, "spec": {"source": {"path": "/a", "builtin": "tiny-llama"}}})
    with pytest.raises(ValidationError, match="exactly one"):
        parse_object({**base, "spec": {"source": {}}})
    model = parse_object({**base, "spec": {"source": {"path": "~/m.gguf"}}})
    assert isinstance(model, Model) and model.spec.lifecycle.value == "Active"


def test_model_digest_format() -> None:
    base = {"apiVersion": "llorch.dev/v1", "kind": "Model", "metadata": {"name": "m"}}
    with pytest.raises(ValidationError, match="sha256"):
        parse_object({**base, "spec": {"source": {"path": "/a"}, "digest": "md5:abc"}})
    parse_object({**base, "spec": {"source": {"path": "/a"}, "digest": "sha256:" + "0" * 64}})


def test_policy_selector_matches_labels() -> None:
    policy = parse_object(
        {
            "apiVersion": "llorch.dev/v1",
            "kind": "Policy",
            "metadata": {"name": "p"},
            "spec": {"selector": {"matchLabels": {"tier": "batch"}}},
        }
    )
    assert isinstance(policy, Policy)
    assert policy.spec.selector.matches({"tier": "batch", "x": "y"})
    assert not policy.spec.selector.matches({"tier": "interactive"})


def test_unknown_kind_and_api_version() -> None:
    with pytest.raises(KindError, match="unknown kind"):
        parse_object({"apiVersion": "llorch.dev/v1", "kind": "Deployment", "metadata": {"name": "x"}})
    with pytest.raises(KindError, match="apiVersion"):
        parse_object({"apiVersion": "v1", "kind": "Pool", "metadata": {"name": "x"}})
    with pytest.raises(KindError, match="mapping"):
        parse_object(["not", "a", "mapping"])
    for kind in ({}, ["Pool"], 3):
        with pytest.raises(KindError, match="unknown kind"):
            parse_object({"apiVersion": "llorch.dev/v1", "kind": kind, "metadata": {"name": "x"}})


def test_kind_names_like_kubectl() -> None:
    assert kind_for("pools") == kind_for("po") == kind_for("Pool") == "Pool"
    assert kind_for("pol") == "Policy"
    assert plural("Policy") == "policies"
    with pytest.raises(KindError):
        kind_for("deployments")
