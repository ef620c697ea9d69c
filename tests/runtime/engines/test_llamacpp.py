"""The llamacpp adapter against a real llama-server it launched itself: text through the native
/completion, a chat through /v1/chat/completions, and what the engine reports about itself."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest

from llorch.resources import PoolSpec
from llorch.runtime.engines.base import (
    CompletionRequest,
    Finished,
    GpuAssignment,
    LaunchRequest,
    Token,
    Upstream,
)
from llorch.runtime.engines.llamacpp import LlamaCpp
from llorch.runtime.ports import free_port
from llorch.runtime.provision import LLAMA_CPP_PYTHON_VERSION
from tests.runtime.engines.replay import collect

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ADAPTER = LlamaCpp()


@pytest.fixture(scope="module")
def engine(
    llama_server_bin: Path, demo_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Upstream]:
    spec = PoolSpec.model_validate(
        {"model": "tiny-llama", "slots": 1, "context": 1024, "engineArgs": ["-t", "1"]}
    )
    launch = ADAPTER.launch(
        LaunchRequest(
            binary=llama_server_bin,
            model_path=demo_model,
            model_name="tiny-llama",
            port=free_port(),
            spec=spec,
            gpus=GpuAssignment(),
        )
    )
    port = launch.argv[launch.argv.index("--port") + 1]
    upstream = Upstream(f"http://127.0.0.1:{port}", "tiny-llama")
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(launch.argv, stdout=out, stderr=subprocess.STDOUT, env=launch.env)
    try:
        with httpx.Client() as client:
            deadline = time.monotonic() + 60
            while not ADAPTER.healthy(client, upstream):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield upstream
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def test_text_streams_one_frame_per_token(engine: Upstream, client: httpx.Client) -> None:
    events = collect(
        ADAPTER.complete(client, engine, CompletionRequest("Once upon a time", 12, seed=1, temperature=0))
    )
    *tokens, end = events
    assert isinstance(end, Finished) and end.tokens_out == len(tokens) == 12 and end.finish_reason == "length"
    assert end.tokens_in is not None and end.tokens_in > 0


def test_the_engine_says_its_version_context_and_busy_slots(engine: Upstream, client: httpx.Client) -> None:
    assert ADAPTER.version(client, engine) == f"b0-llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"
    assert ADAPTER.context_per_slot(client, engine) == 1024
    assert ADAPTER.busy_slots(client, engine) == 0


def test_kv_cache_use_is_what_the_slots_hold_of_their_context(engine: Upstream, client: httpx.Client) -> None:
    request = CompletionRequest(prompt="The KV cache keeps this prompt", max_tokens=4, cache_prompt=True)
    events = list(ADAPTER.complete(client, engine, request))
    assert isinstance(events[-1], Finished)
    usage = ADAPTER.kv_cache_usage(client, engine)
    assert usage is not None and 0 < usage <= 1, usage
    assert usage >= (events[-1].tokens_in or 0) / 1024, "at least the prompt the one slot keeps"


# Bounded on purpose: the demo model's weights are random, so only the constraint ends its output.
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["answer", "n"],
    "additionalProperties": False,
}


def text_and_end(engine: Upstream, client: httpx.Client, request: CompletionRequest) -> tuple[str, Finished]:
    *tokens, end = collect(ADAPTER.complete(client, engine, request))
    assert isinstance(end, Finished)
    return "".join(t.text for t in tokens if isinstance(t, Token)), end


def test_a_json_schema_constrains_the_text(engine: Upstream, client: httpx.Client) -> None:
    request = CompletionRequest("Reply in JSON:", 200, seed=1, temperature=0, json_schema=ANSWER_SCHEMA)
    text, end = text_and_end(engine, client, request)
    jsonschema.validate(json.loads(text), ANSWER_SCHEMA)
    assert end.finish_reason == "stop", "the grammar ended the text, not max_tokens"


def test_a_grammar_constrains_the_text(engine: Upstream, client: httpx.Client) -> None:
    request = CompletionRequest(
        "Say yes or no:", 32, seed=1, temperature=0, grammar='root ::= ("yes" | "no") "."'
    )
    text, end = text_and_end(engine, client, request)
    assert re.fullmatch(r"(yes|no)\.", text), text
    assert end.finish_reason == "stop"
