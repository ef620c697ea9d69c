"""`get`, `describe` and `delete`: objects of a kind (pools, models, policies), and llorchd's read-only
views that `get` lists the same way (capabilities, replica sets, artifacts)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from llorch.cli.client import Client
from llorch.cli.ctl import names as completing
from llorch.cli.ctl.common import Settings, fail, resolve
from llorch.cli.ctl.watching import resuming
from llorch.cli.render import artifacts, details, runtime, tables, values
from llorch.resources import API_VERSION, ARTIFACT_KINDS, api_path


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
    "pools", "pool", "pool", lambda c, w, f: c.capabilities(), lambda e, wide: runtime.capabilities_table(e)
)
_REPLICASETS = _View(
    "replicasets",
    "id",
    "replicaset",
    lambda c, w, f: c.replicasets(),
    lambda e, wide: runtime.replicasets_table(e, wide=wide),
)
_ARTIFACTS = _View(
    "items",
    "id",
    "artifact",
    _artifacts,
    lambda e, wide: artifacts.artifacts_table(e, wide=wide, now=time.time()),
)
_VIEWS = {
    **dict.fromkeys(("capabilities", "capability", "caps"), _CAPABILITIES),
    **dict.fromkeys(("replicasets", "replicaset", "rs"), _REPLICASETS),
    **dict.fromkeys(("artifacts", "artifact", "art"), _ARTIFACTS),
}


@click.command()
@click.argument("resource", shell_complete=completing.resource)
@click.argument("names", nargs=-1, shell_complete=completing.names_after_resource)
@click.option("-o", "--output", type=click.Choice(["wide", "yaml", "json", "name"]), help="Output format.")
@click.option(
    "-w",
    "--watch",
    is_flag=True,
    help="After the list, print a row for each change (pools, models, policies), as kubectl get -w.",
)
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
    watch: bool,
    artifact_kind: str | None,
    tag: str | None,
    limit: int | None,
) -> None:
    """List pools, models or policies (po, mo, pol), or the named ones; -w then follows changes.

    Also `get capabilities` (caps): what each pool serves; `get replicasets` (rs): load per pool;
    `get artifacts` (art): stored artifacts, newest first, filtered by --kind, --tag, --limit.
    """
    view_name, slash, name = resource.partition("/")
    view = _VIEWS.get(view_name.lower())
    filters = ArtifactFilter(artifact_kind, tag, limit)
    if filters != ArtifactFilter(None, None, None) and view is not _ARTIFACTS:
        raise click.UsageError("--kind, --tag and --limit filter artifacts only")
    if view is not None:
        if watch:
            raise click.UsageError("-w follows pools, models and policies")
        _get_view(settings, view, ([name] if slash else []) + list(names), output, filters)
        return
    kind, wanted = resolve(resource, names)
    with settings.client() as client:
        if watch:
            _watch(client, kind, wanted, output)
            return
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
        click.echo(values.to_yaml(whole) if output == "yaml" else values.to_json(whole))
    elif output == "name":
        for item in items:
            click.echo(values.resource_name(kind, str(item.get("metadata", {}).get("name"))))
    elif items:
        click.echo(tables.object_table(kind, items, wide=output == "wide", now=time.time()))
    else:
        click.echo("No resources found.", err=True)
    _warn(tables.manifest_warning(errors))


WATCH_TYPES = ("ADDED", "MODIFIED", "DELETED")


def _watch(client: Client, kind: str, wanted: list[str], output: str | None) -> None:
    """The table once, then a row per change from where the list left off; a dropped connection
    resumes from the last resource version seen. Ends with Ctrl-C."""
    listing = client.list_kind(kind)
    items = [i for i in listing.get("items") or [] if isinstance(i, dict)]
    if wanted:
        items = [i for i in items if values.name_of(i) in wanted]
    wide = output == "wide"
    if output in (None, "wide"):
        click.echo(tables.object_table(kind, items, wide=wide, now=time.time()))
    else:
        for item in items:
            _watch_line(kind, {"type": "ADDED", "object": item}, output)
    version = (listing.get("metadata") or {}).get("resourceVersion")
    for frame in client.watch(api_path(kind), {}, since=version, on_resume=resuming):
        change = frame.data
        obj = change.get("object")
        if frame.event not in WATCH_TYPES or not isinstance(obj, dict):
            continue
        if wanted and values.name_of(obj) not in wanted:
            continue
        _watch_line(kind, change, output)


def _watch_line(kind: str, change: dict[str, Any], output: str | None) -> None:
    obj = change["object"]
    if output == "name":
        click.echo(values.resource_name(kind, values.name_of(obj)))
    elif output == "json":
        click.echo(json.dumps(change, ensure_ascii=False))
    elif output == "yaml":
        click.echo("---\n" + values.to_yaml(change))
    else:
        click.echo(tables.object_line(kind, obj, wide=output == "wide", now=time.time()))


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
        click.echo(values.to_yaml(answer) if output == "yaml" else values.to_json(answer))
    elif output == "name":
        for entry in entries:
            click.echo(f"{view.label}/{entry.get(view.key)}")
    elif not entries:
        click.echo("No resources found.", err=True)
    else:
        click.echo(view.table(entries, output == "wide"))


@click.command()
@click.argument("resource", shell_complete=completing.resource)
@click.argument("names", nargs=-1, shell_complete=completing.names_after_resource)
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
        click.echo("\n\n".join(details.describe(kind, client.get(kind, name), now=now) for name in wanted))


@click.command()
@click.argument("resource", shell_complete=completing.resource)
@click.argument("names", nargs=-1, shell_complete=completing.names_after_resource)
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
            click.echo(f"{values.key_name(key)} {result.get('action', 'deleted')}{suffix}")


COMMANDS = (get, describe, delete)
