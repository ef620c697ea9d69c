"""The server's own settings file (llorch.yaml): validated like any manifest, never reconciled."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llorch.resources.meta import Spec
from llorch.resources.model import TrustPolicy

# An OpenSSH public key line: its type, its base64 blob, an optional comment.
_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$"
)

Scope = Literal["read", "submit", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "submit", "admin")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
JwtAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


class ApiKey(Spec):
    """A key llorchd accepts, stored only as the sha256 of the key (`llorchctl token create`)."""

    name: str = Field(description="Shows as `token:<name>` in logs and the audit trail.")
    sha256: str = Field(description="Lower-case hex sha256 of the key; the key itself is never stored.")
    scopes: list[Scope] = Field(
        min_length=1,
        description="read: every GET; submit: tasks, sessions, "
        "OpenAI/Anthropic endpoints, artifacts, tools; admin: everything.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _KEY_NAME.match(value):
            raise ValueError(f"{value!r}: a key name is letters, digits, '.', '_' and '-', at most 63")
        return value

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("sha256 must be 64 lower-case hex digits: the key's digest, never the key")
        return value


def _is_loopback_url(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _rs256() -> list[JwtAlgorithm]:
    return ["RS256"]


class Oidc(Spec):
    """Bearer JWTs from an OpenID Connect provider, verified against its published keys (JWKS)."""

    issuer: str = Field(min_length=1, description="The `iss` every token must carry.")
    audience: str = Field(min_length=1, description="The `aud` every token must carry.")
    jwks_file: str | None = Field(default=None, description="A JWKS document on disk.")
    jwks_url: str | None = Field(
        default=None, description="Where the provider publishes its JWKS (https, or http on loopback)."
    )
    scopes_claim: str = Field(
        default="scope",
        min_length=1,
        description="Claim holding the scopes: a space-separated string "
        "or a list; values other than read, submit, admin are ignored.",
    )
    leeway_seconds: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat."
    )
    algorithms: list[JwtAlgorithm] = Field(default_factory=_rs256, min_length=1)

    @model_validator(mode="after")
    def _one_key_source(self) -> Oidc:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of jwksFile or jwksUrl")
        url = self.jwks_url
        if url is not None and not (
            url.startswith("https://") or (url.startswith("http://") and _is_loopback_url(url))
        ):
            raise ValueError("jwksUrl must be https (plain http only on a loopback address)")
        return self


class Auth(Spec):
    tokens: list[str] = Field(
        default_factory=list, description="Accepted bearer tokens, each an admin key (prefer keys)."
    )
    token_env: str | None = Field(
        default="LLORCH_TOKENS",
        description="Environment variable with more tokens, comma-separated; admin keys too.",
    )
    keys: list[ApiKey] = Field(default_factory=list, description="Named keys with scopes, stored as sha256.")
    oidc: Oidc | None = Field(default=None, description="Also accept JWTs from this OIDC provider.")
    allow_unauthenticated_loopback: bool = Field(
        default=True, description="With no token configured, accept requests on a loopback bind."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Auth:
        names = [key.name for key in self.keys]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"key names must be unique: {', '.join(repeated)} appear more than once")
        return self


class Backoff(Spec):
    initial_seconds: float = Field(gt=0)
    max_seconds: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max_seconds < self.initial_seconds:
            raise ValueError("maxSeconds must be >= initialSeconds")
        return self


class Reconcile(Spec):
    resync_seconds: float = Field(default=30.0, gt=0, description="Every key is reconciled this often.")
    workers: int = Field(default=2, ge=1, le=32)
    error_backoff: Backoff = Field(default_factory=lambda: Backoff(initial_seconds=0.5, max_seconds=60.0))
    debounce_ms: int = Field(
        default=300, ge=10, le=10_000, description="Quiet time before a file change counts."
    )


class Supervision(Spec):
    restart_backoff: Backoff = Field(default_factory=lambda: Backoff(initial_seconds=10.0, max_seconds=300.0))
    reset_after_seconds: float = Field(
        default=600.0, gt=0, description="Healthy this long resets the backoff."
    )
    stop_grace_seconds: float = Field(
        default=10.0, ge=0, description="SIGTERM, then SIGKILL after this long."
    )
    drain_grace_seconds: float = Field(
        default=30.0, ge=0, description="In-flight tasks get this long on scale-down."
    )


class LlamaCppSettings(Spec):
    binary: str | None = Field(
        default=None, description="Path of llama-server; built into the cache when unset."
    )
    backend: str = Field(
        default="cpu",
        pattern="^(cpu|cuda)$",
        description="cuda: llama-server built with GGML_CUDA (needs nvcc; `llorchd provision --cuda`).",
    )
    native: bool = Field(
        default=False,
        description="Build for this machine only (-march=native; for CUDA, the GPUs present): faster, "
        "but the binary may not run on another machine. Each choice is cached apart.",
    )


class EngineBinary(Spec):
    binary: str | None = Field(
        default=None, description="Path of the engine's launcher; found on PATH when unset."
    )


class Engines(Spec):
    llamacpp: LlamaCppSettings = Field(default_factory=LlamaCppSettings)
    vllm: EngineBinary = Field(default_factory=EngineBinary)
    tgi: EngineBinary = Field(default_factory=EngineBinary)
    triton: EngineBinary = Field(default_factory=EngineBinary)


class Server(Spec):
    """waitress runs one thread per request in flight, and an open SSE stream holds its thread
    until the task ends; so it gets `maxStreams + controlThreads` threads, and control calls keep
    answering while `maxStreams` streams are open. More streams than that wait in waitress's
    queue for a thread; they are not refused."""

    max_streams: int = Field(default=64, ge=1, le=4096, description="Streams served at once.")
    control_threads: int = Field(default=16, ge=2, le=256, description="Threads kept for everything else.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_header_bytes: int = Field(
        default=65_536, ge=4096, le=1_048_576, description="Request line and headers; more is 431."
    )
    max_json_depth: int = Field(
        default=64, ge=2, le=1000, description="Nesting of a JSON body; deeper is 400 before parsing."
    )
    request_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A request must arrive whole (headers and body) within this long of its first "
        "byte, or its connection is closed.",
    )


class ArtifactRetention(Spec):
    """What the periodic artifact GC (and `llorchctl artifact gc`) removes. Unset limits remove nothing."""

    max_age_days: float | None = Field(default=None, gt=0, description="Artifacts older than this go.")
    max_total_bytes: int | None = Field(
        default=None, gt=0, description="Past this total, the oldest artifacts go first."
    )
    keep_tagged: bool = Field(default=True, description="An artifact with any tag is never removed.")


class Artifacts(Spec):
    max_bytes: int = Field(
        default=1_048_576, gt=0, description="The largest artifact content accepted, in UTF-8 bytes."
    )
    retention: ArtifactRetention = Field(default_factory=ArtifactRetention)


class Trust(Spec):
    policy: TrustPolicy = Field(
        default=TrustPolicy.PERMISSIVE,
        description="permissive: an unsigned or unverifiable Model runs, with a warning; "
        "strict: it does not run.",
    )
    keys: list[str] = Field(
        default_factory=list,
        description="OpenSSH public keys (lines as in id_ed25519.pub) whose signatures are trusted.",
    )

    @field_validator("keys")
    @classmethod
    def _ssh_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not _SSH_KEY.match(key.strip()):
                shown = key if len(key) <= 40 else key[:37] + "..."
                raise ValueError(f"{shown!r} is not an OpenSSH public key line (type base64 [comment])")
        return [key.strip() for key in keys]


class Cache(Spec):
    max_bytes: int | None = Field(
        default=None, gt=0, description="Downloaded weights past this total are pruned; unset: no limit."
    )
    retired_grace_seconds: float = Field(
        default=86_400.0,
        ge=0,
        description="A Retired Model's weights may be pruned this long after it was retired.",
    )


class Capacity(Spec):
    host_memory_mib: int | None = Field(
        default=None,
        ge=1,
        alias="hostMemoryMiB",
        description="Host memory CPU replicas may reserve, in MiB; physical memory less 2 GiB when unset.",
    )


class ServerConfig(Spec):
    bind: str = "127.0.0.1:8080"
    manifests_dir: str = "manifests"
    state_dir: str | None = Field(
        default=None, description="sqlite and replica logs; XDG state folder when unset."
    )
    cache_dir: str | None = Field(default=None, description="Engine builds and models; XDG cache when unset.")
    auth: Auth = Field(default_factory=Auth)
    reconcile: Reconcile = Field(default_factory=Reconcile)
    supervision: Supervision = Field(default_factory=Supervision)
    engines: Engines = Field(default_factory=Engines)
    server: Server = Field(default_factory=Server)
    artifacts: Artifacts = Field(default_factory=Artifacts)
    capacity: Capacity = Field(default_factory=Capacity)
    trust: Trust = Field(default_factory=Trust)
    cache: Cache = Field(default_factory=Cache)
