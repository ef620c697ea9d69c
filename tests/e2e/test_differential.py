"""The same requests, sent with the official `openai` and `anthropic` SDKs, to a llama-server the
test starts itself and through a real llorchd to the replica it runs: the answers must be the same,
field by field. The direct server gets the very command line llorch's launch code builds for the
pool (only the port differs), so with a seed and temperature 0 even the generated text matches.

What is set aside: generated ids (string `id`s; token ids are integers and stay), times
(`created`, `created_at`, `completed_at`), `model` (the client names a pool through llorch) and
`system_fingerprint`; llama.cpp's `timings` are compared by their fields, not their values. The
demo model's weights are random, so what the engine emits is what its constraints force.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import gguf
import httpx
import jsonschema
import openai
import psutil
import pytest
import yaml
from pydantic import BaseModel

from llorch.resources import PoolSpec
from llorch.runtime.engines.base import GpuAssignment, LaunchRequest
from llorch.runtime.engines.llamacpp import LlamaCpp
from tests.e2e.conftest import Llorchd, free_port, running_llorchd, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.slow]

MODEL = "tiny-llama"
# One decode thread each (see Llorchd.write_pool): six llama-servers share two cores here.
CPU = {"model": MODEL, "replicas": 1, "gpus": {"count": 0}, "engineArgs": ["--threads", "1"]}
POOLS: dict[str, dict[str, Any]] = {
    "chat": {**CPU, "slots": 2, "context": 1024},
    "embed": {**CPU, "workload": "embedding", "pooling": "mean", "slots": 2, "context": 512},
    "rank": {**CPU, "workload": "rerank", "slots": 2, "context": 512},
}
GREEDY: dict[str, Any] = {"seed": 7, "temperature": 0}
HI = [{"role": "user", "content": "Say hi."}]
ASIDE = frozenset({"created", "created_at", "completed_at", "model", "system_fingerprint"})

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["answer", "n"],
    "additionalProperties": False,
}


@dataclass
class Side:
    """One way to reach the engine: its OpenAI and Anthropic clients and the `model` to send."""

    openai: openai.OpenAI
    anthropic: anthropic.Anthropic
    models: dict[str, str]  # pool → the name to put in `model`


@dataclass
class Both:
    direct: Side
    llorch: Side


def comparable(value: Any) -> Any:
    """`value` with what may differ between two servers set aside (see the module's docstring)."""
    if isinstance(value, BaseModel):
        return comparable(value.model_dump(mode="json", exclude_unset=True))
    if isinstance(value, dict):
        return {
            key: sorted(item) if key == "timings" and isinstance(item, dict) else comparable(item)
            for key, item in value.items()
            if key not in ASIDE and not (key == "id" and isinstance(item, str))
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def launch_argv(
    binary: Path, model: Path, spec: dict[str, Any], port: int
) -> tuple[list[str], dict[str, str]]:
    """llorch's own command line for a CPU replica of the pool."""
    launch = LlamaCpp().launch(
        LaunchRequest(
            binary=binary,
            model_path=model,
            model_name=MODEL,
            port=port,
            spec=PoolSpec.model_validate(spec),
            gpus=GpuAssignment(),
        )
    )
    return launch.argv, launch.env


def without_port(argv: list[str]) -> list[str]:
    at = argv.index("--port")
    return argv[:at] + argv[at + 2 :]


@pytest.fixture(scope="module")
def direct(
    llama_server_bin: Path, demo_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A llama-server per pool, on llorch's flags for it: pool → base URL."""
    logs = tmp_path_factory.mktemp("direct")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    try:
        for pool, spec in POOLS.items():
            port = free_port()
            argv, env = launch_argv(llama_server_bin, demo_model, spec, port)
            with (logs / f"{pool}.log").open("wb") as out:
                procs[pool] = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **env},
                    start_new_session=True,
                )
            urls[pool] = f"http://127.0.0.1:{port}"
        for pool, url in urls.items():
            wait_for(f"direct llama-server for {pool}", lambda url=url: _healthy(url), timeout=60)
        yield urls
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            proc.wait(10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def write_manifests(folder: Path) -> Path:
    """The demo Model and POOLS, as llorchd reads them from its folder."""
    model = {"apiVersion": "llorch.dev/v1", "kind": "Model", "metadata": {"name": MODEL}}
    docs = [{**model, "spec": {"source": {"builtin": MODEL}}}]
    docs += [
        {"apiVersion": "llorch.dev/v1", "kind": "Pool", "metadata": {"name": name}, "spec": spec}
        for name, spec in POOLS.items()
    ]
    folder.mkdir()
    (folder / "differential.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path, demo_model: Path
) -> Iterator[Llorchd]:
    tmp = tmp_path_factory.mktemp("differential")
    with running_llorchd(tmp, write_manifests(tmp / "manifests")) as llorchd:
        for pool in POOLS:
            wait_for(f"pool {pool} Ready", lambda pool=pool: llorchd.ready_replicas(pool) == 1, timeout=90)
        yield llorchd


@pytest.fixture(scope="module")
def both(direct: dict[str, str], daemon: Llorchd) -> Iterator[Both]:
    # No retries: a refusal must reach the test, not be retried away by the client.
    options: dict[str, Any] = {"api_key": "unused", "max_retries": 0, "timeout": 60}
    chat = direct["chat"]
    sides = Both(
        direct=Side(
            openai.OpenAI(base_url=chat + "/v1", **options),
            anthropic.Anthropic(base_url=chat, **options),
            dict.fromkeys(POOLS, MODEL),
        ),
        llorch=Side(
            openai.OpenAI(base_url=daemon.url + "/v1", **options),
            anthropic.Anthropic(base_url=daemon.url, **options),
            {pool: pool for pool in POOLS},
        ),
    )
    yield sides
    for side in (sides.direct, sides.llorch):
        side.openai.close()
        side.anthropic.close()


def on(side: Side, url: str | None) -> openai.OpenAI:
    """The side's OpenAI client; for the direct side, at `url`, the server of a pool other than chat."""
    return side.openai if url is None else side.openai.with_options(base_url=url + "/v1")


def test_llorch_runs_the_command_line_the_direct_servers_got(
    daemon: Llorchd, llama_server_bin: Path, demo_model: Path
) -> None:
    running = sorted(without_port(psutil.Process(pid).cmdline()) for pid in daemon.engine_pids())
    expected = sorted(
        without_port(launch_argv(llama_server_bin, demo_model, spec, 0)[0]) for spec in POOLS.values()
    )
    assert running == expected


def test_a_chat_is_the_same(both: Both) -> None:
    answers = [
        side.openai.chat.completions.create(model=side.models["chat"], messages=HI, max_tokens=12, **GREEDY)
        for side in (both.direct, both.llorch)
    ]
    assert comparable(answers[1]) == comparable(answers[0])
    assert answers[1].choices[0].message.content


def test_tool_definitions_are_accepted_and_tool_calls_come_back_the_same(both: Both) -> None:
    answers = [
        side.openai.chat.completions.create(
            model=side.models["chat"],
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=[WEATHER_TOOL],
            max_tokens=24,
            **GREEDY,
        )
        for side in (both.direct, both.llorch)
    ]
    direct, relayed = (comparable(a) for a in answers)
    assert relayed == direct
    calls = answers[0].choices[0].message.tool_calls
    # The random model may not call the tool; when the engine emits calls, their shapes are equal.
    assert [c.model_dump(exclude={"id"}) for c in answers[1].choices[0].message.tool_calls or []] == [
        c.model_dump(exclude={"id"}) for c in calls or []
    ]


def test_json_schema_output_is_valid_against_the_schema(both: Both) -> None:
    # llama.cpp's own field on its OpenAI completions endpoint, which llorch relays untouched.
    answers = [
        side.openai.completions.create(
            model=side.models["chat"],
            prompt="Answer in JSON:",
            max_tokens=200,
            extra_body={"json_schema": ANSWER_SCHEMA},
            **GREEDY,
        )
        for side in (both.direct, both.llorch)
    ]
    assert comparable(answers[1]) == comparable(answers[0])
    jsonschema.validate(json.loads(answers[1].choices[0].text), ANSWER_SCHEMA)
    assert answers[1].choices[0].finish_reason == "stop"


def test_a_response_format_the_engine_fails_fails_the_same_way(both: Both) -> None:
    """OpenAI's chat `response_format: json_schema`: this llama.cpp build fails to set up the
    grammar it derives on its chat endpoint. Whatever the engine says, llorch says too."""
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}}
    outcomes: list[Any] = []
    for side in (both.direct, both.llorch):
        try:
            answer = side.openai.chat.completions.create(
                model=side.models["chat"],
                messages=HI,
                max_tokens=200,
                response_format=response_format,
                **GREEDY,
            )
        except openai.APIStatusError as exc:
            outcomes.append((exc.status_code, type(exc).__name__, exc.message))
        else:
            jsonschema.validate(json.loads(answer.choices[0].message.content or ""), ANSWER_SCHEMA)
            outcomes.append(comparable(answer))
    assert outcomes[1] == outcomes[0]


def test_top_logprobs_and_two_choices(both: Both) -> None:
    answers = [
        side.openai.chat.completions.create(
            model=side.models["chat"], messages=HI, max_tokens=6, n=2, logprobs=True, top_logprobs=3, **GREEDY
        )
        for side in (both.direct, both.llorch)
    ]
    assert comparable(answers[1]) == comparable(answers[0])
    relayed = answers[1]
    assert [c.index for c in relayed.choices] == [0, 1]
    for choice in relayed.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        assert {len(token.top_logprobs) for token in choice.logprobs.content} == {3}


def chat_streams(both: Both, **extra: Any) -> list[list[Any]]:
    return [
        [
            comparable(chunk)
            for chunk in side.openai.chat.completions.create(
                model=side.models["chat"], messages=HI, max_tokens=8, stream=True, **GREEDY, **extra
            )
        ]
        for side in (both.direct, both.llorch)
    ]


def test_chat_stream_chunks_are_the_same_with_usage(both: Both) -> None:
    direct, relayed = chat_streams(both, stream_options={"include_usage": True})
    assert relayed == direct
    assert relayed[-1]["choices"] == [] and relayed[-1]["usage"]["completion_tokens"] == 8


@pytest.mark.xfail(
    strict=True,
    reason="relay bug: llorch asks the engine for usage the client did not ask for and drops the "
    "usage chunk, but llama-server then moves `timings` from the finish chunk to the usage chunk, "
    "so the client's finish chunk lacks the `timings` it has directly",
)
def test_chat_stream_chunks_are_the_same_without_usage(both: Both) -> None:
    direct, relayed = chat_streams(both)
    assert not [chunk for chunk in relayed if chunk.get("usage")], "usage comes only when asked for"
    assert relayed == direct


def test_completion_stream_chunks_are_the_same(both: Both) -> None:
    streams = [
        [
            comparable(chunk)
            for chunk in side.openai.completions.create(
                model=side.models["chat"], prompt="Once upon a time", max_tokens=8, stream=True, **GREEDY
            )
        ]
        for side in (both.direct, both.llorch)
    ]
    assert streams[1] == streams[0] and len(streams[1]) > 1


def test_embeddings_have_the_models_dimension(both: Both, direct: dict[str, str], demo_model: Path) -> None:
    reader = gguf.GGUFReader(demo_model)
    arch = reader.fields["general.architecture"].contents()
    n_embd = reader.fields[f"{arch}.embedding_length"].contents()
    answers = [
        on(side, url).embeddings.create(model=side.models["embed"], input=["a cat", "a dog"])
        for side, url in ((both.direct, direct["embed"]), (both.llorch, None))
    ]
    assert comparable(answers[1]) == comparable(answers[0])
    assert [len(item.embedding) for item in answers[1].data] == [n_embd, n_embd]


def test_rerank_gives_one_result_per_document_kept(both: Both, direct: dict[str, str]) -> None:
    body = {"query": "a cat", "documents": ["dogs bark", "cats purr", "fish swim"], "top_n": 2}
    answers = [
        on(side, url).post("/rerank", body={**body, "model": side.models["rank"]}, cast_to=object)
        for side, url in ((both.direct, direct["rank"]), (both.llorch, None))
    ]
    assert comparable(answers[1]) == comparable(answers[0])
    assert isinstance(answers[1], dict) and len(answers[1]["results"]) == 2


def test_responses_output_text_is_the_same(both: Both) -> None:
    answers = [
        side.openai.responses.create(
            model=side.models["chat"], input="Say hi.", max_output_tokens=8, temperature=0
        )
        for side in (both.direct, both.llorch)
    ]
    assert comparable(answers[1]) == comparable(answers[0])
    assert answers[1].output_text and answers[1].output_text == answers[0].output_text


def test_anthropic_messages_and_their_stream_events_are_the_same(both: Both) -> None:
    # Sampling settings past max_tokens go in the body as extras in this SDK.
    request: dict[str, Any] = {"max_tokens": 8, "messages": HI, "extra_body": {"temperature": 0}}
    answers = [
        side.anthropic.messages.create(model=side.models["chat"], **request)
        for side in (both.direct, both.llorch)
    ]
    assert comparable(answers[1]) == comparable(answers[0])
    streams = [
        list(side.anthropic.messages.create(model=side.models["chat"], stream=True, **request))
        for side in (both.direct, both.llorch)
    ]
    sequence = [event.type for event in streams[1]]
    assert sequence == [event.type for event in streams[0]]
    assert sequence[0] == "message_start" and sequence[-1] == "message_stop"
    assert [comparable(e) for e in streams[1]] == [comparable(e) for e in streams[0]]


def test_count_tokens_is_the_same(both: Both) -> None:
    counts = [
        side.anthropic.messages.count_tokens(model=side.models["chat"], messages=HI)
        for side in (both.direct, both.llorch)
    ]
    assert counts[1].input_tokens == counts[0].input_tokens > 0


def test_an_unknown_model_is_refused_in_each_clients_own_shape(both: Both) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        both.llorch.openai.chat.completions.create(model="no-such-pool", messages=HI, max_tokens=4)
    assert refused.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError):
        both.llorch.anthropic.messages.create(model="no-such-pool", max_tokens=4, messages=HI)


def test_a_session_is_charged_the_engines_own_usage(both: Both, daemon: Llorchd) -> None:
    """llorch's own fields (here session_id) are taken out before the body goes on: the answer is
    the direct one, and the session is charged the usage the engine reported, prompt included,
    whether the client streamed (and asked no usage) or not."""
    request: dict[str, Any] = {"messages": HI, "max_tokens": 6, **GREEDY}
    direct = both.direct.openai.chat.completions.create(model=MODEL, **request)
    relayed = both.llorch.openai.chat.completions.create(
        model="chat", extra_body={"session_id": "differential"}, **request
    )
    assert comparable(relayed) == comparable(direct)
    streamed = both.llorch.openai.chat.completions.create(
        model="chat", stream=True, extra_body={"session_id": "differential"}, **request
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        == direct.choices[0].message.content
    )
    assert direct.usage is not None
    session = daemon.get("/v1/sessions/differential")
    assert session["turns"] == 2 and session["tokens_used"] == 2 * direct.usage.total_tokens


def test_every_slot_is_free_again(daemon: Llorchd) -> None:
    """Runs last: after every exchange above, refusals and failures included, no slot is held."""

    def all_free() -> bool:
        sets = {s["id"]: s for s in daemon.get("/v1/replicasets")["replicasets"]}
        return all(sets[pool]["slots_free"] == sets[pool]["slots_total"] > 0 for pool in POOLS)

    wait_for("every slot free", all_free, timeout=10)
