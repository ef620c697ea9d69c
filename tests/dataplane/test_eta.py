"""The start prediction as a pure function of what runs and waits, and the measurements behind it."""

from __future__ import annotations

import pytest

from llorch.dataplane.estimates import DecodeSample, ServiceTimes
from llorch.dataplane.eta import PoolNow, predict_start


def flat(tokens_per_second: float) -> object:
    return lambda concurrency: tokens_per_second


def test_a_free_slot_means_now() -> None:
    now = PoolNow(slots=4, replicas=1, running=[100, 50], ahead=[], prompt_seconds=0.1)
    assert predict_start(now, flat(100.0)) == 0.0  # type: ignore[arg-type]


def test_with_every_slot_busy_the_task_starts_when_the_shortest_sequence_ends() -> None:
    now = PoolNow(slots=2, replicas=1, running=[300, 100], ahead=[], prompt_seconds=0.1)
    assert predict_start(now, flat(100.0)) == pytest.approx(1.0)  # type: ignore[arg-type]


def test_queued_tasks_ahead_take_the_slots_first_and_pay_their_prompt() -> None:
    # One slot: the running task ends at 1 s; the one ahead runs 0.5 s prompt + 2 s decode.
    now = PoolNow(slots=1, replicas=1, running=[100], ahead=[200], prompt_seconds=0.5)
    assert predict_start(now, flat(100.0)) == pytest.approx(3.5)  # type: ignore[arg-type]


def test_sequences_sharing_a_replica_are_each_slower() -> None:
    def rate(concurrency: int) -> float:
        return 100.0 / concurrency  # a saturated replica: 100 tokens/s in all

    now = PoolNow(slots=2, replicas=1, running=[100, 100], ahead=[], prompt_seconds=0.0)
    assert predict_start(now, rate) == pytest.approx(2.0)


def test_slots_spread_over_replicas_decode_at_per_replica_concurrency() -> None:
    seen = []

    def rate(concurrency: int) -> float:
        seen.append(concurrency)
        return 100.0

    now = PoolNow(slots=4, replicas=2, running=[100, 100, 100, 100], ahead=[], prompt_seconds=0.0)
    predict_start(now, rate)
    assert seen[0] == 2


def test_a_cold_pool_adds_its_start_first() -> None:
    now = PoolNow(slots=2, replicas=1, running=[], ahead=[50, 50], prompt_seconds=0.0, ready_in=7.5)
    assert predict_start(now, flat(100.0)) == pytest.approx(8.0)  # type: ignore[arg-type]


def test_no_slots_at_all_is_never() -> None:
    assert predict_start(PoolNow(0, 0, [], [], 0.0), flat(1.0)) == float("inf")  # type: ignore[arg-type]


def sample(tokens: int, seconds: float, concurrency: int, *, stopped: bool = True) -> DecodeSample:
    return DecodeSample(tokens, seconds, concurrency, 0.02, max_tokens=512, stopped=stopped)


def test_rates_are_measured_per_concurrency_and_interpolated() -> None:
    times = ServiceTimes()
    times.observe("p", 1.0, 101, sample=sample(101, 1.0, 1))  # 100 tokens/s alone
    times.observe("p", 2.0, 101, sample=sample(101, 2.0, 4))  # 50 tokens/s with 4 sharing
    rate = times.rate("p")
    assert rate(1) == pytest.approx(100.0) and rate(4) == pytest.approx(50.0)
    assert rate(2) == pytest.approx(100.0 - 50.0 / 3)
    assert rate(8) == pytest.approx(25.0), "past the highest level measured, total throughput saturates"
    assert times.prompt_seconds("p") == pytest.approx(0.02)


def test_before_any_sample_the_rate_comes_from_whole_tasks_or_a_guess() -> None:
    times = ServiceTimes()
    assert times.rate("p")(1) == 50.0
    assert times.rate("p")(2) == 25.0, "one level known: the replica is taken as saturated past it"
    times.observe("p", 2.0, tokens=100)
    assert times.rate("p")(1) == pytest.approx(50.0)
    times.observe("q", 1.0, tokens=200)
    assert times.rate("q")(1) == pytest.approx(200.0)


def test_expected_length_is_the_mean_of_what_recent_tasks_would_have_produced() -> None:
    times = ServiceTimes()
    assert times.expected_tokens("p", 800) == 800, "nothing measured: the task's own max"
    for tokens in (90, 100, 110, 120, 130):
        times.observe("p", 1.0, tokens, sample=sample(tokens, 1.0, 1))
    assert times.expected_tokens("p", 800) == 110
    assert times.expected_tokens("p", 100) == 98, "capped at the task's max: (90 + 4 x 100) / 5"
    assert times.expected_tokens("p", 800, declared=300) == 300, "what the client says wins"


def test_a_task_cut_at_its_limit_would_have_gone_on() -> None:
    times = ServiceTimes()
    for _ in range(4):
        times.observe("p", 1.0, 64, sample=sample(64, 1.0, 1, stopped=False))
    assert times.expected_tokens("p", 512) == 512
    assert times.expected_tokens("p", 32) == 32


def test_a_running_task_is_expected_to_go_on_as_recent_ones_that_got_as_far() -> None:
    times = ServiceTimes()
    for tokens in (50, 100, 150, 200):
        times.observe("p", 1.0, tokens, sample=sample(tokens, 1.0, 1))
    assert times.remaining_tokens("p", 800, produced=40) == 85, "all four got past 40: mean 125"
    assert times.remaining_tokens("p", 800, produced=120) == 55, "150 and 200 got past 120"
    assert times.remaining_tokens("p", 800, produced=250) == 8, "past every recent one: it may end any time"
    assert times.remaining_tokens("p", 800, produced=30, declared=100) == 70
