"""What a reload (SIGHUP, `systemctl reload llorchd`) may change while llorchd runs.

The settings file is read again and compared with what runs. Keys and tokens, trust and artifact
retention are taken at once: each is read afresh by whatever uses it. Everything else (the bind
address, folders, engines, threads, timings) is built into running parts, so a change there is
named in the log as waiting for a restart, and the running value stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llorch.resources import ServerConfig

# Settings, as the file spells them, that a running llorchd takes on reload.
LIVE = ("auth.keys", "auth.tokens", "auth.tokenEnv", "trust.policy", "trust.keys", "artifacts.retention")


@dataclass(frozen=True)
class Changes:
    live: list[str]
    """Changed settings applied at once."""
    need_restart: list[str]
    """Changed settings that keep their running value until llorchd restarts."""

    def __bool__(self) -> bool:
        return bool(self.live or self.need_restart)


def changes(running: ServerConfig, reread: ServerConfig) -> Changes:
    changed = _changed_fields(running.to_wire(), reread.to_wire())
    live = [name for name in changed if name in LIVE]
    return Changes(live, [name for name in changed if name not in LIVE])


def applied(running: ServerConfig, reread: ServerConfig, live: list[str]) -> ServerConfig:
    """`running` with the live settings of `reread`: what llorchd runs with after the reload."""
    sections: dict[str, Any] = {}
    for name in live:
        section, _, field = name.partition(".")
        attr = _attr(section)
        current = sections.get(attr, getattr(running, attr))
        value = getattr(getattr(reread, attr), _attr(field))
        sections[attr] = current.model_copy(update={_attr(field): value})
    return running.model_copy(update=sections)


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted camelCase names of what differs, one level into each section (`auth.keys`)."""
    found: list[str] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            found += [
                f"{key}.{sub}"
                for sub in sorted(set(before) | set(after))
                if before.get(sub) != after.get(sub)
            ]
        else:
            found.append(key)
    return found


def _attr(camel: str) -> str:
    """`tokenEnv` → `token_env`: the pydantic attribute behind a name as the file spells it."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
