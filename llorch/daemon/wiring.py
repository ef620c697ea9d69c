"""llorchd assembled: store, state, controllers, data plane and HTTP server, started and stopped in order."""

from __future__ import annotations

import errno
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import prometheus_client
from waitress import wasyncore
from waitress.server import MultiSocketServer

from llorch.api.app import body_limit, create_app
from llorch.api.auth.keys import KeyRing
from llorch.api.auth.oidc import OidcVerifier
from llorch.api.context import AppContext
from llorch.controllers.housekeeping import Housekeeping
from llorch.controllers.manager import Manager
from llorch.controllers.metrics import ControlMetrics
from llorch.controllers.model import ModelController
from llorch.controllers.pool import PoolController
from llorch.controllers.workqueue import WorkQueue
from llorch.daemon import reload
from llorch.daemon.config import (
    ConfigError,
    cache_dir,
    check_bind,
    configured_tokens,
    split_bind,
    state_dir,
)
from llorch.daemon.diagnostics import Checkup
from llorch.daemon.http import LimitedServer, create_server
from llorch.dataplane.metrics import Metrics
from llorch.dataplane.service import TaskService
from llorch.dataplane.tools import HttpTools
from llorch.resources import ServerConfig
from llorch.runtime.downloads import Downloads
from llorch.runtime.gpus import GpuInventory, detect
from llorch.runtime.jwks import KeySetSource
from llorch.runtime.outbound.fetch import OutboundClient
from llorch.runtime.provision import Build, ensure_llama_server, find_engine
from llorch.runtime.registry import ReplicaRegistry
from llorch.store.artifacts import ArtifactStore
from llorch.store.audit import DENY, AuditLog
from llorch.store.cache import WeightsCache
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore
from llorch.store.watch import ManifestWatcher

log = logging.getLogger("llorch.daemon")


class Daemon:
    def __init__(
        self,
        config: ServerConfig,
        *,
        base_dir: Path,
        inventory: GpuInventory | None = None,
        reread: Callable[[], ServerConfig] | None = None,
    ) -> None:
        """`reread`: the settings as the file says them now, for a reload (None: no file)."""
        self.config = config
        self._reread = reread
        self._reload_asked = False
        self.host, self.port = split_bind(config.bind)
        self.tokens = configured_tokens(config)
        check_bind(config, self.host, self.tokens)
        self.manifests = (base_dir / config.manifests_dir).resolve()
        self.state = state_dir(config)
        self.cache = cache_dir(config)
        self.db = StateDB(self.state / "state.sqlite")
        self.audit = AuditLog(self.state / "state.sqlite")
        self.keys = KeyRing(config.auth.keys, self.tokens)
        oidc = config.auth.oidc
        self.oidc = (
            OidcVerifier(oidc, KeySetSource(oidc.jwks_file or oidc.jwks_url or ""))
            if oidc is not None
            else None
        )
        self.artifacts = ArtifactStore(
            self.db,
            self.state / "artifacts",
            max_bytes=config.artifacts.max_bytes,
            retention=config.artifacts.retention,
        )
        self.weights_cache = WeightsCache(self.db, self.cache, config.cache)
        self.store = ManifestStore(self.manifests)
        self.registry = ReplicaRegistry()
        self.inventory = inventory if inventory is not None else detect()
        # Prometheus reads a counter's start from its first sample; `_created` series would only
        # double every family (and contracts/metrics.yaml).
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.metrics = Metrics(inventory=self.inventory, process=True)
        control_metrics = ControlMetrics(self.metrics.registry)
        queue_metrics = control_metrics.queue("reconcile")
        # Tool calls wait on other hosts: half the control threads at most, so control calls answer.
        self.tools = HttpTools(
            self.store, self.audit, OutboundClient(), max_in_flight=max(1, config.server.control_threads // 2)
        )
        reconcile = config.reconcile
        self.queue = WorkQueue(
            backoff_base=reconcile.error_backoff.initial_seconds,
            backoff_max=reconcile.error_backoff.max_seconds,
            metrics=queue_metrics,
        )
        queue_metrics.watch_depth(self.queue.__len__)
        self.tasks = TaskService(
            store=self.store,
            db=self.db,
            registry=self.registry,
            metrics=self.metrics,
            audit=self.audit,
            on_demand=lambda pool: self.queue.add(f"Pool/{pool}"),
        )
        self._binaries: dict[str, Path] = {}
        self.pools = PoolController(
            store=self.store,
            db=self.db,
            registry=self.registry,
            config=config,
            engine_binary=self._engine_binary,
            inventory=self.inventory,
            logs_dir=self.state / "logs",
            enqueue=self.queue.add,
            events=self.metrics,
            demand=self.tasks.demand,
        )
        self.metrics.watch_replicas(self.pools.phase_counts)
        # A download that ends reconciles its Model at once, not at the next progress poll.
        self.downloads = Downloads(on_progress=self.queue.add)
        self.models = ModelController(
            self.store,
            self.db,
            self.cache,
            trust=config.trust,
            downloads=self.downloads,
            weights_cache=self.weights_cache,
            on_verification=self.metrics.verification,
        )
        self.manager = Manager(
            [self.models, self.pools],
            self.queue,
            desired_keys=self.store.keys(),
            resync_seconds=reconcile.resync_seconds,
            workers=reconcile.workers,
            metrics=control_metrics,
        )
        self.housekeeping = Housekeeping(
            store=self.store,
            db=self.db,
            cache=self.weights_cache,
            artifacts=self.artifacts,
            enqueue=self.queue.add,
        )
        self.watcher = ManifestWatcher(
            self.store,
            self._changed,
            debounce_ms=reconcile.debounce_ms,
            resync_seconds=reconcile.resync_seconds,
        )
        self.server: LimitedServer | MultiSocketServer | None = None
        self._stopped = threading.Event()
        self._stop_signal: str | None = None
        # waitress's socket map: the loop in `serve` polls it, `stop` closes it.
        self._sockets: dict[int, Any] = {}

    def _engine_binary(self, engine: str) -> Path:
        known = self._binaries.get(engine)
        if known is not None:
            return known
        engines = self.config.engines
        if engine == "llamacpp":
            llamacpp = engines.llamacpp
            configured = Path(llamacpp.binary).expanduser() if llamacpp.binary else None
            build = Build(llamacpp.backend, llamacpp.native)
            found = ensure_llama_server(configured, build, cache=self.cache, log=log.info)
        else:
            binary = getattr(engines, engine).binary
            found = find_engine(engine, Path(binary).expanduser() if binary else None)
        self._binaries[engine] = found
        return found

    def _changed(self, keys: set[str]) -> None:
        self.db.changes.publish(sorted(keys), "spec")
        self.manager.set_desired_keys(self.store.keys())
        self.manager.changed(keys)

    def start(self) -> None:
        """Everything but the HTTP loop: provisioning first, so a missing engine fails loudly at once,
        then the listening socket, so a port in use fails before any replica is started or adopted."""
        self._engine_binary("llamacpp")
        self.store.load()
        # What the folder holds at start-up is where watches begin (llorch.store.changes).
        self.db.changes.publish(sorted(self.store.keys()), "spec")
        for error in self.store.errors():
            log.warning("manifest error: %s", error)
        if not self.store.keys() and not self.store.errors():
            log.info(
                "%s holds no manifests: `llorchctl apply -f FILE` adds some, `llorchd init` writes "
                "the demo with a llorch.yaml",
                self.manifests,
            )
        self._listen()
        self.pools.adopt_workers()
        self.manager.set_desired_keys(self.store.keys())
        self.tasks.start()
        self.manager.start()
        self.watcher.start()
        self.housekeeping.start()
        log.info(
            "llorchd serving on http://%s:%d (manifests %s, state %s)",
            self.host,
            self.port,
            self.manifests,
            self.state,
        )

    def _listen(self) -> None:
        app = create_app(
            AppContext(
                config=self.config,
                store=self.store,
                db=self.db,
                artifacts=self.artifacts,
                cache=self.weights_cache,
                registry=self.registry,
                tasks=self.tasks,
                keys=self.keys,
                oidc=self.oidc,
                audit=self.audit,
                tools=self.tools,
                changed=self._changed,
                diagnostics=Checkup(
                    config=lambda: self.config,
                    store=self.store,
                    inventory=self.inventory,
                    folders={"state": self.state, "cache": self.cache},
                    engine_binary=self._engine_binary,
                ),
                inventory=self.inventory,
            ),
            metrics=self.metrics.registry,
        )
        try:
            self.server = create_server(
                app,
                self.config,
                body_limit(self.config),
                map=self._sockets,
                host=self.host,
                port=self.port,
                threads=self.config.server.max_streams + self.config.server.control_threads,
                # Connections that send nothing this long are closed (idle keep-alives); requests that
                # arrive too slowly are closed by the server after server.requestTimeoutSeconds.
                channel_timeout=120,
                # Keeps a channel read while its request runs, so a client that closes the connection
                # is seen at once (waitress.client_disconnected) even when nothing is being written.
                channel_request_lookahead=1,
                ident="llorchd",
                clear_untrusted_proxy_headers=True,
            )
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: something else does (another llorchd? "
                f"`ss -ltnp 'sport = :{self.port}'` names it); change bind in llorch.yaml or --bind"
            ) from exc

    def serve(self) -> bool:
        """Run the HTTP loop until a stop signal, then stop; True when it was SIGQUIT (the
        replicas left running).

        The loop runs one poll at a time so a signal only sets a flag: an exception raised from a
        signal handler would land inside whatever waitress was doing, and waitress swallows
        errors from its socket handlers, so the signal would be lost.
        """
        assert self.server is not None
        signals = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        signals[RELOAD_SIGNAL] = signal.signal(RELOAD_SIGNAL, self._on_reload_signal)
        try:
            while self._stop_signal is None:
                if self._reload_asked:
                    self._reload_asked = False
                    self.reload()
                wasyncore.loop(timeout=0.5, map=self._sockets, count=1)
        finally:
            for sig, previous in signals.items():
                signal.signal(sig, previous)
            detached = self._stop_signal == DETACH_SIGNAL.name
            self.stop(keep_workers=detached)
        return detached

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signal.Signals(signum).name

    def _on_reload_signal(self, signum: int, frame: FrameType | None) -> None:
        self.ask_reload()

    def ask_reload(self) -> None:
        """A reload for the serving loop to do (a signal handler must not do it itself)."""
        self._reload_asked = True

    def reload(self) -> None:
        """Read the settings file again and take what can change while running (llorch.daemon.reload)."""
        if self._reread is None:
            log.warning("reload: llorchd was started without a settings file, so there is nothing to re-read")
            return
        try:
            fresh = self._reread()
            found = reload.changes(self.config, fresh)
            target = reload.applied(self.config, fresh, found.live)
            tokens = configured_tokens(target)
            check_bind(target, self.host, tokens)
        except ConfigError as exc:
            log.error("reload refused, the running settings stay: %s", exc)
            self.audit.record("config.reload", "llorch.yaml", decision=DENY, reason=str(exc))
            return
        if not found:
            log.info("reload: the settings file is unchanged")
            return
        if found.live:
            self.keys.replace(target.auth.keys, tokens)
            self.tokens = tokens
            self.models.retrust(target.trust)
            self.artifacts.set_retention(target.artifacts.retention)
            self.config = target
            for key in sorted(self.store.keys()):
                if key.startswith("Model/"):  # their trust verdicts may differ now
                    self.queue.add(key)
            log.info("reload: now in force: %s", ", ".join(found.live))
        if found.need_restart:
            log.warning(
                "reload: %s changed in the settings file; the running values stay until llorchd restarts",
                ", ".join(found.need_restart),
            )
        self.audit.record(
            "config.reload",
            "llorch.yaml",
            reason=f"applied: {', '.join(found.live) or 'nothing'}; "
            f"after a restart: {', '.join(found.need_restart) or 'nothing'}",
        )

    def stop(self, *, keep_workers: bool = False) -> None:
        """Stop serving. With `keep_workers` (SIGQUIT, for an upgrade) the replicas keep running
        for the next llorchd to adopt; otherwise every replica is stopped too."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        what = "leaving replicas running for the next llorchd" if keep_workers else "stopping every replica"
        log.info("llorchd stopping: ending open streams, closing the API, %s", what)
        # Ending the tasks first lets each open SSE stream write its last frame and return
        # while waitress's sockets are still open; closing them under a writing thread fails.
        self.tasks.stop()
        if self.server is not None:
            self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            wasyncore.close_all(self._sockets)
        self.watcher.stop()
        self.housekeeping.stop()
        self.manager.stop()
        self.pools.shutdown(keep_workers=keep_workers)
        self.audit.close()
        self.db.close()
        log.info("llorchd stopped")


class Shutdown(Exception):
    """Raised by the signal handlers to unwind whatever the main thread is doing."""


# SIGTERM and SIGINT stop llorchd and every replica; SIGQUIT stops llorchd but leaves the
# replicas running, for an upgrade whose next llorchd adopts them; SIGHUP re-reads the settings.
DETACH_SIGNAL = signal.SIGQUIT
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, DETACH_SIGNAL)
RELOAD_SIGNAL = signal.SIGHUP
# The exit status after SIGQUIT: sysexits' EX_TEMPFAIL, "try again". Not 0, so that a supervisor
# can tell "start me again, the replicas wait" from a plain stop (the systemd unit restarts on it).
DETACHED_EXIT_STATUS = 75


def install_signal_handlers(on_reload: Callable[[], None]) -> None:
    """For start-up (provisioning can take minutes): a stop signal unwinds it at once, and a
    reload waits for `serve` (SIGHUP's default would end the process). `serve` replaces these
    with handlers that only set a flag."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Shutdown(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    signal.signal(RELOAD_SIGNAL, lambda signum, frame: on_reload())
