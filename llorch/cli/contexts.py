"""llorchctl's contexts, as kubectl's kubeconfig holds them: named servers (with the file a token is
read from), and which one is current.

The file is `$LLORCH_CONFIG`, else `$XDG_CONFIG_HOME/llorch/config` (`~/.config/llorch/config`):

    current-context: box
    contexts:
      - name: box
        server: http://127.0.0.1:18080
        token-file: ~/.config/llorch/box.token

A token is never written here, only the file it is read from, so the contexts file can be shown
or shared without handing out a key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llorch.cli.client import normalize_url

CONFIG_ENV = "LLORCH_CONFIG"


class ContextError(Exception):
    """The contexts file cannot be read or written, or names no such context."""


class Context(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(min_length=1)
    server: str = Field(min_length=1)
    token_file: str | None = Field(default=None, alias="token-file")

    def token(self) -> str | None:
        """The token the context's file holds (surrounding whitespace dropped), if it names one."""
        if self.token_file is None:
            return None
        path = Path(self.token_file).expanduser()
        try:
            return path.read_text().strip() or None
        except OSError as exc:
            raise ContextError(f"context {self.name}: cannot read its token file {path}: {exc}") from exc


class Contexts(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    current_context: str | None = Field(default=None, alias="current-context")
    contexts: list[Context] = Field(default_factory=list)

    def get(self, name: str) -> Context:
        for context in self.contexts:
            if context.name == name:
                return context
        known = ", ".join(c.name for c in self.contexts) or "none yet (llorchctl config set-context)"
        raise ContextError(f"no context {name!r}; known: {known}")

    def current(self) -> Context | None:
        return self.get(self.current_context) if self.current_context else None

    def with_context(self, context: Context) -> Contexts:
        """This file with `context` added, or replacing the one of its name (in place)."""
        others = [c for c in self.contexts if c.name != context.name]
        if len(others) == len(self.contexts):
            return self.model_copy(update={"contexts": [*self.contexts, context]})
        return self.model_copy(
            update={"contexts": [context if c.name == context.name else c for c in self.contexts]}
        )


def config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llorch" / "config"


def load(path: Path | None = None) -> Contexts:
    """The contexts file; an absent one is empty."""
    path = path or config_path()
    try:
        raw = yaml.safe_load(path.read_text()) if path.exists() else None
        return Contexts.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ContextError(f"{path}: {problems}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ContextError(f"{path}: {exc}") from exc


def save(contexts: Contexts, path: Path | None = None) -> Path:
    """Write the file whole, atomically, readable by its owner only."""
    path = path or config_path()
    text = yaml.safe_dump(contexts.model_dump(by_alias=True, exclude_none=True), sort_keys=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise ContextError(f"cannot write {path}: {exc}") from exc
    return path


def make_context(name: str, server: str, token_file: str | None) -> Context:
    """A context as `set-context` and `tunnel` write it: the URL normalized, the token file absolute."""
    token_path = str(Path(token_file).expanduser().resolve()) if token_file else None
    return Context(name=name, server=normalize_url(server), token_file=token_path)
