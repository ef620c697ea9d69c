"""What finished tasks measured, per pool, for predictions: how long a task takes, how fast one
sequence decodes at each concurrency, how long a prompt takes to its first token, and how many
tokens tasks usually produce. Moving averages: recent load matters more than yesterday's."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass

from llorch.dataplane.eta import Rate

# Before any task finished there is nothing to measure; a second per task and 50 tokens/s per
# sequence are humble guesses that the first finished task replaces.
INITIAL_SERVICE_SECONDS = 1.0
INITIAL_TOKENS_PER_SECOND = 50.0
INITIAL_PROMPT_SECONDS = 0.05
# Weight of the newest sample.
ALPHA = 0.2
# Finished tasks remembered per pool for their lengths.
RECENT_TASKS = 64
# Finished tasks needed before their lengths say what the next ones will produce.
MIN_SAMPLES = 4


def _ewma(known: float | None, sample: float) -> float:
    return sample if known is None else known + ALPHA * (sample - known)


@dataclass(frozen=True)
class DecodeSample:
    """One finished task's decode: `tokens` produced in `decode_seconds` while `concurrency`
    sequences (itself included) shared its replica; `prompt_seconds` from its slot to its first
    token."""

    tokens: int
    decode_seconds: float
    concurrency: int
    prompt_seconds: float
    max_tokens: int
    stopped: bool
    """Ended on its own (EOS, a stop string) rather than at max_tokens."""


@dataclass
class _Pool:
    seconds: float | None = None
    per_token: float | None = None
    prompt: float | None = None
    # Admission to start of a task that found a free slot: what every start costs besides waiting.
    dispatch: float | None = None
    # concurrency -> per-sequence tokens/s
    rates: dict[int, float] | None = None
    # (tokens produced, max_tokens, whether it stopped on its own) of recent finished tasks.
    lengths: deque[tuple[int, int, bool]] | None = None


class ServiceTimes:
    def __init__(self) -> None:
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()

    def _pool(self, pool: str) -> _Pool:
        return self._pools.setdefault(pool, _Pool())

    def observe(
        self, pool: str, seconds: float, tokens: int = 0, *, sample: DecodeSample | None = None
    ) -> None:
        """A task of `pool` held a slot `seconds` and produced `tokens` (0 when it did not finish)."""
        with self._lock:
            known = self._pool(pool)
            known.seconds = _ewma(known.seconds, seconds)
            if tokens > 0:
                known.per_token = _ewma(known.per_token, seconds / tokens)
            if sample is None:
                return
            known.prompt = _ewma(known.prompt, sample.prompt_seconds)
            if known.lengths is None:
                known.lengths = deque(maxlen=RECENT_TASKS)
            known.lengths.append((sample.tokens, sample.max_tokens, sample.stopped))
            if sample.tokens > 1 and sample.decode_seconds > 0:
                rates = known.rates if known.rates is not None else {}
                level = max(1, sample.concurrency)
                rates[level] = _ewma(rates.get(level), (sample.tokens - 1) / sample.decode_seconds)
                known.rates = rates

    # -- what one task takes --------------------------------------------------------------------

    def predicted_service_ms(self, pool: str, expected_tokens: int | None) -> int | None:
        """How long a task should run once started, from measurements only; None before any.
        A task that says how many tokens it expects is priced per token."""
        with self._lock:
            known = self._pools.get(pool)
            if known is None:
                return None
            if expected_tokens is not None and known.per_token is not None:
                return int(known.per_token * expected_tokens * 1000)
            seconds = known.seconds
        return None if seconds is None else int(seconds * 1000)

    def measured(self, pool: str) -> float | None:
        with self._lock:
            known = self._pools.get(pool)
            return None if known is None else known.seconds

    def seconds(self, pool: str) -> float:
        measured = self.measured(pool)
        return INITIAL_SERVICE_SECONDS if measured is None else measured

    # -- what the start prediction needs ---------------------------------------------------------

    def observe_dispatch(self, pool: str, seconds: float) -> None:
        with self._lock:
            known = self._pool(pool)
            known.dispatch = _ewma(known.dispatch, seconds)

    def dispatch_seconds(self, pool: str) -> float:
        """Admission to start when a slot is free; 0 before any was measured."""
        with self._lock:
            known = self._pools.get(pool)
            return 0.0 if known is None or known.dispatch is None else known.dispatch

    def prompt_seconds(self, pool: str) -> float:
        with self._lock:
            known = self._pools.get(pool)
            return INITIAL_PROMPT_SECONDS if known is None or known.prompt is None else known.prompt

    def rate(self, pool: str) -> Rate:
        """Per-sequence tokens/s by concurrency: measured levels, linear between them; past the
        highest measured level the replica's total throughput is taken as saturated (so each of
        more sequences gets proportionally less); below the lowest, the lowest's rate."""
        with self._lock:
            known = self._pools.get(pool)
            rates = dict(known.rates) if known is not None and known.rates else {}
            per_token = known.per_token if known is not None else None
        if not rates:
            single = 1.0 / per_token if per_token else INITIAL_TOKENS_PER_SECOND
            rates = {1: single}
        levels = sorted(rates)

        def at(concurrency: int) -> float:
            if concurrency in rates:
                return rates[concurrency]
            if concurrency < levels[0]:
                return rates[levels[0]]
            if concurrency > levels[-1]:
                top = levels[-1]
                return rates[top] * top / concurrency
            upper = bisect.bisect_left(levels, concurrency)
            low, high = levels[upper - 1], levels[upper]
            share = (concurrency - low) / (high - low)
            return rates[low] + share * (rates[high] - rates[low])

        return at

    def _lengths_under(self, pool: str, max_tokens: int) -> list[float] | None:
        """What recent tasks of `pool` would have produced under `max_tokens`: what one that
        stopped on its own produced (capped), and `max_tokens` for one cut at its own limit (it
        would have gone on). None before MIN_SAMPLES tasks finished."""
        with self._lock:
            known = self._pools.get(pool)
            lengths = list(known.lengths) if known is not None and known.lengths else []
        if len(lengths) < MIN_SAMPLES:
            return None
        return [
            float(min(tokens, max_tokens)) if stopped else float(max_tokens) for tokens, _, stopped in lengths
        ]

    def expected_tokens(self, pool: str, max_tokens: int, declared: int | None = None) -> float:
        """Tokens a task of `pool` should produce: what it declared (`expected_tokens`), else the
        mean of what recent tasks would have produced under its max_tokens (its max_tokens before
        enough of them finished)."""
        if declared is not None:
            return float(min(declared, max_tokens))
        under = self._lengths_under(pool, max_tokens)
        return float(max_tokens) if under is None else max(1.0, sum(under) / len(under))

    def remaining_tokens(
        self, pool: str, max_tokens: int, produced: int, declared: int | None = None
    ) -> float:
        """Tokens a running task that produced `produced` still has to: what recent tasks that got
        that far went on to produce (the mean), within its max_tokens."""
        if declared is not None:
            return float(max(0, min(declared, max_tokens) - produced))
        under = self._lengths_under(pool, max_tokens)
        if under is None:
            return float(max(0, max_tokens - produced))
        further = [length for length in under if length > produced]
        if not further:
            # Longer than any recent task: it may stop at any moment; say a few more tokens.
            return float(max(0, min(max_tokens - produced, 8)))
        return sum(further) / len(further) - produced
