"""`llorchctl`: the kubectl of llorch. It talks to llorchd over HTTP only.

Exit codes: 0 ok, 1 error, 2 usage (click's), 130 interrupted; `diff` follows kubectl diff
(1 = differences, 2 = error).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import click
import yaml
from pydantic import ValidationError

from llorch.cli import render
from llorch.cli.client import DEFAULT_URL, ApiError, Client, Frame, Unreachable
from llorch.resources import API_VERSION, ARTIFACT_KINDS, KindError, kind_for, parse_object
from llorch.resources.locate import locate

_ERROR_EXIT = "llorchctl.error_exit"
_MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Settings:
    server: str
    token: str | None
    timeout: float

    def client(self) -> Client:
        return Client(self.server, token=self.token, timeout=self.timeout)


def report(message: str, details: Iterable[str] = (), *, newline: bool = False) -> None:
    """`error: ...` and indented detail lines on stderr; `newline` ends a line of streamed tokens first."""
    click.echo(("\n" if newline else "") + f"error: {message}", err=True)
    for line in details:
        click.echo(f"  {line}", err=True)


def fail(message: str, details: Iterable[str] = (), *, newline: bool = False) -> NoReturn:
    report(message, details, newline=newline)
    raise click.exceptions.Exit(click.get_current_context().meta.get(_ERROR_EXIT, 1))


def api_error_text(exc: ApiError) -> str:
    text = str(exc)
    if exc.retry_after_s is not None:
        text += f"; retry after {exc.retry_after_s:g}s"
    return text


def detail_lines(exc: ApiError) -> list[str]:
    return [render.located(d.file, d.line, d.field, d.message) for d in exc.details]


class _Llorchctl(click.Group):
    """Turns the failures every command shares into one `error:` line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            fail(api_error_text(exc), detail_lines(exc))
        except Unreachable as exc:
            fail(str(exc))
        except KindError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None


@click.group(cls=_Llorchctl, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    "-s",
    envvar="LLORCH_URL",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    help="llorchd's address.",
)
@click.option("--token", envvar="LLORCH_TOKEN", show_envvar=True, help="Bearer token for the API.")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds to wait."
)
@click.pass_context
def main(ctx: click.Context, server: str, token: str | None, timeout: float) -> None:
    """Control llorchd: apply manifests, inspect pools, models and policies, run prompts."""
    ctx.obj = Settings(server, token, timeout)


# -- reading manifests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    source: str
    """The name llorchd reports errors against: the file's name, or its path under a -f folder."""
    text: str
    documents: int


def _manifest_paths(arg: str, recursive: bool) -> Iterator[tuple[str, Path]]:
    path = Path(arg)
    if not path.exists():
        fail(f'the path "{arg}" does not exist')
    if not path.is_dir():
        yield path.name, path
        return
    found = path.rglob("*") if recursive else path.iterdir()
    for file in sorted(f for f in found if f.is_file() and f.suffix in _MANIFEST_SUFFIXES):
        yield file.relative_to(path).as_posix(), file


def read_manifests(args: Sequence[str], recursive: bool) -> list[Manifest]:
    """Every -f input, checked locally so a typo is reported before anything is sent."""
    manifests: list[Manifest] = []
    problems: list[str] = []
    for arg in args:
        if arg == "-":
            inputs = [("<stdin>", sys.stdin.read())]
        else:
            inputs = [(source, _read(path)) for source, path in _manifest_paths(arg, recursive)]
        for source, text in inputs:
            documents, found = check_manifest(source, text)
            manifests.append(Manifest(source, text, documents))
            problems += found
    if problems:
        fail("invalid manifests, nothing was sent:", problems)
    manifests = [m for m in manifests if m.documents]
    if not manifests:
        fail("no objects passed to apply")
    return manifests


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")


def check_manifest(source: str, text: str) -> tuple[int, list[str]]:
    """How many documents the text holds, and `file:line: field: message` for each problem in them.

    A fast local check only: llorchd validates again, authoritatively.
    """
    try:
        docs = list(yaml.safe_load_all(text))
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return 1, [render.located(source, line, None, getattr(exc, "problem", None) or exc)]
    problems: list[str] = []
    present = [(doc, node) for doc, node in zip(docs, nodes, strict=True) if doc is not None]
    for doc, node in present:
        try:
            parse_object(doc)
        except KindError as exc:
            problems.append(render.located(source, node.start_mark.line + 1, None, exc))
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                at = locate(node, error)
                problems.append(render.located(source, at.line, at.field, error["msg"]))
    return len(present), problems


_FILES = click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    help="Manifest file, folder of *.yaml/*.yml, or - for stdin; repeatable.",
)
_RECURSIVE = click.option("-R", "--recursive", is_flag=True, help="Descend into folders given with -f.")


# -- apply, diff ------------------------------------------------------------------------------------


@main.command()
@_FILES
@_RECURSIVE
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.pass_obj
def apply(settings: Settings, files: tuple[str, ...], recursive: bool, dry_run: bool) -> None:
    """Create or update objects from manifests.

    llorchd writes them into its manifests folder, next to the files you edit by hand.
    """
    manifests = read_manifests(files, recursive)
    suffix = " (dry run)" if dry_run else ""
    failed = False
    with settings.client() as client:
        for manifest in manifests:
            try:
                results = client.apply(manifest.text, source=manifest.source, dry_run=dry_run)
            except ApiError as exc:
                # Each file is applied on its own, as kubectl does: one bad file does not stop the rest.
                failed = True
                report(f"{manifest.source}: {api_error_text(exc)}", detail_lines(exc))
                continue
            for result in results:
                click.echo(f"{render.key_name(str(result.get('key')))} {result.get('action')}{suffix}")
    if failed:
        raise click.exceptions.Exit(1)


@main.command()
@_FILES
@_RECURSIVE
@click.pass_context
def diff(ctx: click.Context, files: tuple[str, ...], recursive: bool) -> None:
    """Show what apply would change, as unified diffs.

    Exit 0: no differences, 1: differences, 2: error (as kubectl diff).
    """
    ctx.meta[_ERROR_EXIT] = 2
    settings: Settings = ctx.obj
    changed = False
    with settings.client() as client:
        for manifest in read_manifests(files, recursive):
            for result in client.apply(manifest.text, source=manifest.source, dry_run=True):
                text = str(result.get("diff") or "")
                if text:
                    changed = True
                    click.echo(text, nl=not text.endswith("\n"))
    if changed:
        raise click.exceptions.Exit(1)


# -- get, describe, delete --------------------------------------------------------------------------


def resolve(resource: str, names: Sequence[str]) -> tuple[str, list[str]]:
    """`pools`, `pool demo`, `po/demo` → ("Pool", [names])."""
    kind_text, slash, name = resource.partition("/")
    kind = kind_for(kind_text)
    if slash and not name:
        fail(f"no name after {kind_text}/")
    return kind, ([name] if name else []) + list(names)


def _warn(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


@dataclass(frozen=True)
class ArtifactFilter:
    kind: str | None
    tag: str | None
    limit: int | None


@dataclass(frozen=True)
class _View:
    """A read-only answer of llorchd that is no kind of object, listed by `get` all the same."""

    field: str
    """The answer's list of entries."""
    key: str
    """The field that names an entry."""
    label: str
    """What `-o name` writes before the name."""
    fetch: Callable[[Client, list[str], ArtifactFilter], dict[str, Any]]
    table: Callable[[list[dict[str, Any]], bool], str]


def _artifacts(client: Client, wanted: list[str], filters: ArtifactFilter) -> dict[str, Any]:
    # Named ones are fetched by id: the listing holds only the newest.
    if wanted:
        return {"items": [client.artifact(artifact_id) for artifact_id in wanted]}
    return client.artifacts(kind=filters.kind, tag=filters.tag, limit=filters.limit)


_CAPABILITIES = _View(
    "pools", "pool", "pool", lambda c, w, f: c.capabilities(), lambda e, wide: render.capabilities_table(e)
)
_REPLICASETS = _View(
    "replicasets",
    "id",
    "replicaset",
    lambda c, w, f: c.replicasets(),
    lambda e, wide: render.replicasets_table(e, wide=wide),
)
_ARTIFACTS = _View(
    "items",
    "id",
    "artifact",
    _artifacts,
    lambda e, wide: render.artifacts_table(e, wide=wide, now=time.time()),
)
_VIEWS = {
    **dict.fromkeys(("capabilities", "capability", "caps"), _CAPABILITIES),
    **dict.fromkeys(("replicasets", "replicaset", "rs"), _REPLICASETS),
    **dict.fromkeys(("artifacts", "artifact", "art"), _ARTIFACTS),
}


@main.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", type=click.Choice(["wide", "yaml", "json", "name"]), help="Output format.")
@click.option(
    "--kind", "artifact_kind", type=click.Choice(ARTIFACT_KINDS), help="Artifacts of this kind only."
)
@click.option("--tag", help="Artifacts with this tag only.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="At most this many artifacts, newest first (default 100).",
)
@click.pass_obj
def get(
    settings: Settings,
    resource: str,
    names: tuple[str, ...],
    output: str | None,
    artifact_kind: str | None,
    tag: str | None,
    limit: int | None,
) -> None:
    """List pools, models or policies (po, mo, pol), or the named ones.

    Also `get capabilities` (caps): what each pool serves; `get replicasets` (rs): load per pool;
    `get artifacts` (art): stored artifacts, newest first, filtered by --kind, --tag, --limit.
    """
    view_name, slash, name = resource.partition("/")
    view = _VIEWS.get(view_name.lower())
    filters = ArtifactFilter(artifact_kind, tag, limit)
    if filters != ArtifactFilter(None, None, None) and view is not _ARTIFACTS:
        raise click.UsageError("--kind, --tag and --limit filter artifacts only")
    if view is not None:
        _get_view(settings, view, ([name] if slash else []) + list(names), output, filters)
        return
    kind, wanted = resolve(resource, names)
    with settings.client() as client:
        if wanted:
            # Events belong to describe; get shows the object alone, as kubectl does.
            items = [{k: v for k, v in client.get(kind, n).items() if k != "events"} for n in wanted]
            errors = [e for item in items for e in item.get("errors") or []]
        else:
            listing = client.list_kind(kind)
            items = [i for i in listing.get("items") or [] if isinstance(i, dict)]
            errors = listing.get("manifestErrors") or []
    if output in ("yaml", "json"):
        whole: Any = (
            items[0]
            if len(wanted) == 1
            else {"apiVersion": API_VERSION, "kind": f"{kind}List", "items": items}
        )
        click.echo(render.to_yaml(whole) if output == "yaml" else render.to_json(whole))
    elif output == "name":
        for item in items:
            click.echo(render.resource_name(kind, str(item.get("metadata", {}).get("name"))))
    elif items:
        click.echo(render.object_table(kind, items, wide=output == "wide", now=time.time()))
    else:
        click.echo("No resources found.", err=True)
    _warn(render.manifest_warning(errors))


def _get_view(
    settings: Settings, view: _View, wanted: list[str], output: str | None, filters: ArtifactFilter
) -> None:
    """The raw answer for -o json/yaml, else a table (of the named entries)."""
    with settings.client() as client:
        answer = view.fetch(client, wanted, filters)
    entries = [e for e in answer.get(view.field) or [] if isinstance(e, dict)]
    if wanted:
        by_name = {str(e.get(view.key)): e for e in entries}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            fail(f"no {view.label} named {', '.join(missing)} in llorchd's {view.field}")
        entries = [by_name[n] for n in wanted]
        answer = {**answer, view.field: entries}
    if output in ("yaml", "json"):
        click.echo(render.to_yaml(answer) if output == "yaml" else render.to_json(answer))
    elif output == "name":
        for entry in entries:
            click.echo(f"{view.label}/{entry.get(view.key)}")
    elif not entries:
        click.echo("No resources found.", err=True)
    else:
        click.echo(view.table(entries, output == "wide"))


@main.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.pass_obj
def describe(settings: Settings, resource: str, names: tuple[str, ...]) -> None:
    """Show objects in detail, with their events.

    Spec, status, conditions, replicas (and a crashing one's last log lines), manifest errors, events.
    """
    kind, wanted = resolve(resource, names)
    with settings.client() as client:
        if not wanted:
            listing = client.list_kind(kind).get("items") or []
            wanted = [str(item.get("metadata", {}).get("name")) for item in listing if isinstance(item, dict)]
        if not wanted:
            click.echo("No resources found.", err=True)
        now = time.time()
        click.echo("\n\n".join(render.describe(kind, client.get(kind, name), now=now) for name in wanted))


@main.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; remove nothing.")
@click.pass_obj
def delete(settings: Settings, resource: str, names: tuple[str, ...], dry_run: bool) -> None:
    """Delete objects: `delete pool/demo` or `delete pool demo`.

    Their documents leave the manifests folder (a file left empty is removed).
    """
    kind, wanted = resolve(resource, names)
    if not wanted:
        raise click.UsageError("name the object(s) to delete, e.g. `llorchctl delete pool/demo`")
    suffix = " (dry run)" if dry_run else ""
    with settings.client() as client:
        for name in wanted:
            result = client.delete(kind, name, dry_run=dry_run)
            key = str(result.get("key") or f"{kind}/{name}")
            click.echo(f"{render.key_name(key)} {result.get('action', 'deleted')}{suffix}")


# -- drain, resume, reload, health -----------------------------------------------------------------

DRAIN_POLL_SECONDS = 0.5
"""How often `drain --wait` asks for the pool's health."""

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_duration(text: str) -> int:
    """`90s`, `2m`, `500ms`, `1h` or plain seconds, as whole milliseconds; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 2m, 500ms, or seconds)")
    return round(float(match[1]) * _UNIT_MS[match[2] or "s"])


def _duration_option(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def pool_names(verb: str, resource: str, names: Sequence[str]) -> list[str]:
    """`pool/demo` or `pool demo` (several names allowed) → the pool names."""
    kind, wanted = resolve(resource, names)
    if kind != "Pool":
        fail(f"{verb} works on pools, not {kind.lower()}s")
    if not wanted:
        raise click.UsageError(f"name the pool(s), e.g. `llorchctl {verb} pool/demo`")
    return wanted


def _drained(health: dict[str, Any]) -> bool:
    replicas = [r for r in health.get("replicas") or [] if isinstance(r, dict)]
    return all(r.get("phase") in (None, "Stopped") for r in replicas)


@main.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.option(
    "--deadline",
    default="60s",
    callback=_duration_option,
    metavar="DURATION",
    show_default=True,
    help="How long running tasks may finish before their replicas are stopped (90s, 2m, 500ms).",
)
@click.option("--wait", is_flag=True, help="Return once every replica has stopped.")
@click.pass_obj
def drain(settings: Settings, resource: str, names: tuple[str, ...], deadline: int, wait: bool) -> None:
    """Stop a pool taking work and stop its replicas: `drain pool/demo`.

    Queued tasks are refused, running ones get until the deadline. `resume` undoes it.
    """
    pools = pool_names("drain", resource, names)
    with settings.client() as client:
        for pool in pools:
            client.drain(pool, deadline_ms=deadline)
            click.echo(f"pool/{pool} draining (deadline {render.millis_text(deadline)})")
        if wait:
            for pool in pools:
                while not _drained(client.health(pool)):
                    time.sleep(DRAIN_POLL_SECONDS)
                click.echo(f"pool/{pool} drained")


@main.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.pass_obj
def resume(settings: Settings, resource: str, names: tuple[str, ...]) -> None:
    """Lift a drain: the pool takes work again and its replicas start."""
    pools = pool_names("resume", resource, names)
    with settings.client() as client:
        for pool in pools:
            client.resume(pool)
            click.echo(f"pool/{pool} resumed")


@main.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.pass_obj
def reload(settings: Settings, resource: str, names: tuple[str, ...]) -> None:
    """Restart a pool's replicas one at a time, each serving until its successor is ready.

    As `kubectl rollout restart`. To change the model, edit spec.model in the manifest instead.
    """
    pools = pool_names("reload", resource, names)
    with settings.client() as client:
        for pool in pools:
            client.reload(pool)
            click.echo(f"pool/{pool} reload started (rolling restart)")


@main.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), help="The raw answer.")
@click.pass_obj
def health(settings: Settings, resource: str, names: tuple[str, ...], output: str | None) -> None:
    """A pool's liveness, readiness, load and replicas, as its health endpoint reports them."""
    pools = pool_names("health", resource, names)
    with settings.client() as client:
        answers = [client.health(pool) for pool in pools]
    if output in ("yaml", "json"):
        whole: Any = answers[0] if len(answers) == 1 else answers
        click.echo(render.to_yaml(whole) if output == "yaml" else render.to_json(whole))
    else:
        click.echo("\n\n".join(render.health(answer) for answer in answers))


# -- run --------------------------------------------------------------------------------------------


@main.command()
@click.argument("pool")
@click.argument("prompt")
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), help="Same seed, same replica: same tokens.")
@click.option("--temperature", type=click.FloatRange(min=0))
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True))
@click.option("--top-k", type=click.IntRange(min=0))
@click.option("--stop", multiple=True, help="Stop sequence; repeatable.")
@click.option(
    "--priority", type=click.Choice(["interactive", "batch"]), default="interactive", show_default=True
)
@click.option(
    "--model", "by_model", is_flag=True, help="POOL names a model; llorchd picks a pool serving it."
)
@click.option("--no-stream-summary", is_flag=True, help="Print only the tokens.")
@click.pass_obj
def run(
    settings: Settings,
    pool: str,
    prompt: str,
    max_tokens: int,
    seed: int | None,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None,
    stop: tuple[str, ...],
    priority: str,
    by_model: bool,
    no_stream_summary: bool,
) -> None:
    """Stream a completion of PROMPT from POOL.

    Tokens go to stdout as they arrive, a summary to stderr. PROMPT - reads stdin. Ctrl-C cancels the task.
    """
    if prompt == "-":
        prompt = sys.stdin.read()
    body: dict[str, Any] = {
        "model_ref" if by_model else "pool": pool,
        "prompt": prompt,
        "max_tokens": max_tokens,
    }
    body["priority"] = priority
    optional = {"seed": seed, "temperature": temperature, "top_p": top_p, "top_k": top_k}
    body |= {key: value for key, value in optional.items() if value is not None}
    if stop:
        body["stop"] = list(stop)
    with settings.client() as client:
        task = client.submit(body)
        task_id = str(task.get("task_id"))
        streams = task.get("streams")
        path = streams.get("sse") if isinstance(streams, dict) else None
        try:
            end, replica = _stream(client.events(path or f"/v1/tasks/{task_id}/events"))
        except KeyboardInterrupt:
            _cancel(client, task_id)
            click.echo(f"\ncanceled task {task_id}", err=True)
            raise click.exceptions.Exit(130) from None
    if not no_stream_summary:
        click.echo("\n" + render.run_summary(end, replica), err=True)


def _stream(frames: Iterator[Frame]) -> tuple[dict[str, Any], str | None]:
    """Write tokens as they come; the end frame's payload and the replica that served the task."""
    replica: str | None = None
    wrote = False
    for frame in frames:
        if frame.event == "started":
            replica = frame.data.get("replica")
        elif frame.event == "token":
            click.echo(str(frame.data.get("t", "")), nl=False)
            wrote = True
        elif frame.event == "end":
            return frame.data, replica
        elif frame.event == "error":
            data = frame.data
            fail(f"{data.get('message', 'task failed')} ({data.get('code', 'ERROR')})", newline=wrote)
    fail("the stream ended before the task did", newline=wrote)


def _cancel(client: Client, task_id: str) -> None:
    try:
        client.cancel(task_id)
    except (ApiError, Unreachable) as exc:
        # Closing the stream already asked llorchd to cancel; this explicit request only makes it certain.
        click.echo(f"\nwarning: cancel of task {task_id} failed: {exc}", err=True)


# -- artifacts --------------------------------------------------------------------------------------


def _key_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not key or not equals:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", ctx, param)
        pairs[key] = text
    return pairs


@main.group()
def artifact() -> None:
    """Keep text in llorchd (plans, summaries, diffs, traces) and read it back by id.

    `get artifacts` lists them.
    """


@artifact.command("put")
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--kind", required=True, type=click.Choice(ARTIFACT_KINDS), help="What the text is.")
@click.option("--tag", "tags", multiple=True, help="A tag to find it by; repeatable.")
@click.option("--parent", metavar="ID", help="The artifact this one derives from.")
@click.option(
    "--meta",
    "metadata",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_key_values,
    help="A metadata entry; repeatable.",
)
@click.pass_obj
def artifact_put(
    settings: Settings,
    file: IO[bytes],
    kind: str,
    tags: tuple[str, ...],
    parent: str | None,
    metadata: dict[str, str],
) -> None:
    """Store FILE (- or none: stdin) and print its id, then `created` or `unchanged`.

    The id is the sha256 of the text: the same text again gets the same id, and its tags are added.
    """
    try:
        content = file.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{file.name} is not UTF-8 text: {exc}")
    body: dict[str, Any] = {"kind": kind, "content": content, "tags": list(tags), "metadata": metadata}
    if parent is not None:
        body["parent"] = parent
    with settings.client() as client:
        stored, created = client.put_artifact(body)
    click.echo(f"{stored.get('id')} {'created' if created else 'unchanged'}")


@artifact.command("show")
@click.argument("artifact_id", metavar="ID")
@click.pass_obj
def artifact_show(settings: Settings, artifact_id: str) -> None:
    """Write the artifact's text to stdout exactly as stored."""
    with settings.client() as client:
        content = str(client.artifact(artifact_id).get("content", ""))
    # Bytes go to stdout untouched: no newline added, no re-encoding by the terminal's locale.
    click.echo(content.encode("utf-8"), nl=False)
