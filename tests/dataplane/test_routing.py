"""Choosing a task's pool: pins, preferences, filters and the reasons given when nothing fits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.routing import Candidate, PlacementPrefs, Want, choose

CHAT = Candidate(
    "chat", "llama-8b", "llamacpp", context=8192, serving=1, free_slots=2, devices=frozenset({0})
)
SMALL = Candidate(
    "small", "llama-8b", "llamacpp", context=2048, serving=1, free_slots=4, devices=frozenset({1})
)
LAN = Candidate("lan", "llama-8b", "vllm", context=32768, serving=1, free_slots=8)
COLD = Candidate("cold", "llama-8b", "llamacpp", context=8192, serving=0, free_slots=0)
OTHER = Candidate("other", "qwen-7b", "llamacpp", context=4096, serving=1, free_slots=1)
POOLS = [CHAT, SMALL, LAN, COLD, OTHER]


def refused(want: Want) -> DataplaneError:
    with pytest.raises(DataplaneError) as caught:
        choose(POOLS, want)
    return caught.value


def test_auto_takes_the_ready_pool_with_most_free_slots() -> None:
    assert choose(POOLS, Want(model_ref="llama-8b")) == "lan"


def test_filters_narrow_the_choice() -> None:
    assert choose(POOLS, Want(model_ref="llama-8b", engine="llamacpp")) == "small"
    assert choose(POOLS, Want(model_ref="llama-8b", engine="llamacpp", ctx=4096)) == "chat"
    avoid = PlacementPrefs(avoid=("lan", "small"))
    assert choose(POOLS, Want(model_ref="llama-8b", placement=avoid)) == "chat"


def test_a_device_mask_keeps_tasks_off_other_gpus_and_cpu_pools_always_qualify() -> None:
    only_gpu0 = PlacementPrefs(device_mask=0b01)
    assert choose(POOLS, Want(model_ref="llama-8b", engine="llamacpp", placement=only_gpu0)) == "chat"
    assert choose([SMALL, COLD], Want(model_ref="llama-8b", placement=only_gpu0)) == "cold"


def test_prefer_takes_the_first_preferred_pool_that_is_ready() -> None:
    prefer = PlacementPrefs(mode="prefer", prefer=("cold", "small", "chat"))
    assert choose(POOLS, Want(model_ref="llama-8b", placement=prefer)) == "small"


def test_prefer_falls_back_unless_told_not_to() -> None:
    prefer = PlacementPrefs(mode="prefer", prefer=("cold",))
    assert choose(POOLS, Want(model_ref="llama-8b", placement=prefer)) == "lan"
    strict = PlacementPrefs(mode="prefer", prefer=("cold",), allow_fallback=False)
    error = refused(Want(model_ref="llama-8b", placement=strict))
    assert error.code == "POOL_UNAVAILABLE" and error.retriable and "allow_fallback" in error.message


def test_a_named_pool_is_a_pin_even_when_not_ready() -> None:
    assert choose(POOLS, Want(pool="cold")) == "cold"
    assert choose(POOLS, Want(placement=PlacementPrefs(mode="pin", pin_pool="small"))) == "small"


def test_a_pin_that_cannot_be_honoured_is_refused_not_replaced() -> None:
    error = refused(Want(pool="small", ctx=4096))
    assert error.code == "INVALID_PARAMS" and "context 2048 < ctx 4096" in error.message
    assert refused(Want(pool="nope")).code == "NOT_FOUND"
    assert "serves model 'qwen-7b'" in refused(Want(pool="other", model_ref="llama-8b")).message
    assert refused(Want(placement=PlacementPrefs(mode="pin"))).code == "INVALID_PARAMS"
    disagree = Want(pool="chat", placement=PlacementPrefs(mode="pin", pin_pool="small"))
    assert "disagree" in refused(disagree).message


def test_when_nothing_fits_every_pool_says_why() -> None:
    error = refused(Want(model_ref="llama-8b", engine="tgi"))
    assert error.code == "INVALID_PARAMS"
    for name in ("chat", "small", "lan", "cold"):
        assert f"pool {name!r}: engine is" in error.message
    assert refused(Want(model_ref="mistral")).code == "NOT_FOUND"
    assert refused(Want()).code == "INVALID_PARAMS"


candidates = st.lists(
    st.builds(
        Candidate,
        name=st.sampled_from(["a", "b", "c", "d", "e"]),
        model=st.sampled_from(["m1", "m2"]),
        engine=st.sampled_from(["llamacpp", "vllm"]),
        context=st.sampled_from([1024, 4096]),
        serving=st.integers(0, 2),
        free_slots=st.integers(0, 4),
        devices=st.frozensets(st.integers(0, 2), max_size=2),
    ),
    max_size=6,
    unique_by=lambda c: c.name,
)
placements = st.builds(
    PlacementPrefs,
    mode=st.sampled_from(["auto", "prefer"]),
    prefer=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2).map(tuple),
    avoid=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2).map(tuple),
    device_mask=st.one_of(st.none(), st.integers(0, 7)),
    allow_fallback=st.booleans(),
)


@given(
    pools=candidates,
    model=st.sampled_from(["m1", "m2"]),
    engine=st.one_of(st.none(), st.sampled_from(["llamacpp", "vllm"])),
    ctx=st.one_of(st.none(), st.sampled_from([512, 2048])),
    placement=placements,
)
def test_a_chosen_pool_always_meets_every_constraint(
    pools: list[Candidate], model: str, engine: str | None, ctx: int | None, placement: PlacementPrefs
) -> None:
    want = Want(model_ref=model, engine=engine, ctx=ctx, placement=placement)
    try:
        name = choose(pools, want)
    except DataplaneError:
        return
    (chosen,) = [c for c in pools if c.name == name]
    assert chosen.model == model and name not in placement.avoid
    assert engine is None or chosen.engine == engine
    assert ctx is None or chosen.context >= ctx
    mask = placement.device_mask
    assert mask is None or all(mask >> d & 1 for d in chosen.devices)
    if placement.mode == "prefer" and not placement.allow_fallback:
        assert name in placement.prefer


@given(pools=candidates, placement=placements)
def test_the_choice_does_not_depend_on_the_order_pools_are_listed(
    pools: list[Candidate], placement: PlacementPrefs
) -> None:
    want = Want(model_ref="m1", placement=placement)

    def outcome(order: list[Candidate]) -> str:
        try:
            return choose(order, want)
        except DataplaneError as exc:
            return exc.code

    assert outcome(pools) == outcome(list(reversed(pools)))
