"""The web UI in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
selenium) against a real llorchd that wants a key, serving the demo pool on a real llama-server.

Each step saves a screenshot under reports/ui/ (named by step) and prints its path. Without
chromium or chromedriver the module is skipped, saying so: `just system-deps` installs them.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.e2e.conftest import (
    LONG_CONTEXT,
    LONG_CONTEXT_ARGS,
    REPO,
    TEST_CONFIG,
    Llorchd,
    read_sse,
    start_llorchd,
    stop_llorchd,
    wait_for,
    write_atomic,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow]

KEY = "llorch_e2e-ui-key"
SHOTS = REPO / "reports" / "ui"
# Without the background-networking flags Chromium dials out at start, and a closed network
# refuses it; a fresh profile keeps one run from seeing another's session storage.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
WAIT_SECONDS = 60

IDLE_POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: spare}
spec: {model: tiny-llama, replicas: 0}
"""


def _installed() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = ", ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None)
        reason = (
            f"web UI tests skipped: {missing} not installed "
            "(`just system-deps`, or apt-get install chromium chromium-driver)"
        )
        # A warning as well as the skip: the warnings summary shows it without -rs.
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    return chromium, driver


class Page:
    """The browser on the UI: find, wait, click, and a screenshot per step."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        self.url = url
        self.shots: list[Path] = []

    def open(self) -> None:
        self.driver.get(self.url + "/ui/")

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def wait(self, what: str, probe: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
        def safely() -> Any:
            try:
                return probe()
            except (NoSuchElementException, StaleElementReferenceException):
                return None  # not rendered yet, or re-rendered between finding it and reading it

        return wait_for(what, safely, timeout=timeout, every=0.05)

    def tab(self, panel: str) -> None:
        self.find(f'#tabs button[data-panel="{panel}"]').click()
        self.wait(f"the {panel} panel", lambda: self.find(f"#panel-{panel}").is_displayed())

    def log_in(self, token: str) -> None:
        field = self.find("#token")
        field.clear()
        field.send_keys(token)
        self.find("#connect").click()

    def shot(self, name: str) -> Path:
        path = SHOTS / f"{len(self.shots) + 1:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path, demo_model: Path
) -> Iterator[Llorchd]:
    tmp = tmp_path_factory.mktemp("ui")
    manifests = tmp / "manifests"
    manifests.mkdir()
    shutil.copy(REPO / "manifests" / "model-demo.yaml", manifests / "model-demo.yaml")
    key = {
        "name": "browser",
        "sha256": hashlib.sha256(KEY.encode()).hexdigest(),
        "scopes": ["read", "submit"],
    }
    llorchd = start_llorchd(tmp, manifests, tmp / "state", {**TEST_CONFIG, "auth": {"keys": [key]}})
    llorchd.http.headers["Authorization"] = f"Bearer {KEY}"
    try:
        # A long context keeps a reply streaming for as long as the test watches it grow.
        llorchd.write_pool(replicas=1, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
        wait_for("the demo pool to be Ready", lambda: llorchd.ready_replicas() == 1, timeout=120)
        yield llorchd
    finally:
        stop_llorchd(llorchd)


@pytest.fixture(scope="module")
def browser_binaries() -> tuple[str, str]:
    """Chromium and chromedriver, or the module skipped before any llorchd is started."""
    return _installed()


@pytest.fixture(scope="module")
def page(browser_binaries: tuple[str, str], daemon: Llorchd) -> Iterator[Page]:
    chromium, chromedriver = browser_binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='llorch-chromium-')}"):
        options.add_argument(flag)
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    # The driver named outright: selenium would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        browser = Page(driver, daemon.url)
        browser.open()
        yield browser
        print("screenshots:\n" + "\n".join(f"  {p}" for p in browser.shots))
    finally:
        driver.quit()


def pool_cell(page: Page, pool: str, cell: str) -> str:
    return page.text(f'#pools-table tr[data-pool="{pool}"] td.{cell}')


def test_a_wrong_token_is_refused_with_a_clear_message(page: Page) -> None:
    page.log_in("not-the-key")
    shown = page.wait("the refusal", lambda: page.find("#login-error").is_displayed())
    assert shown
    message = page.text("#login-error")
    assert "The server refused the token" in message and "BAD_TOKEN" in message, message
    assert not page.find("#main").is_displayed()
    assert page.driver.execute_script("return sessionStorage.length") == 0, "a refused token is not kept"
    page.shot("wrong-token")


def test_the_token_once_then_the_demo_pool_is_ready(page: Page, daemon: Llorchd) -> None:
    page.log_in(KEY)
    page.wait("the demo pool Ready", lambda: pool_cell(page, "demo", "state") == "Ready")
    assert pool_cell(page, "demo", "replicas") == "1/1"
    assert pool_cell(page, "demo", "slots") == "0/1"
    page.shot("pools-ready")
    # Kept for the tab only: a reload does not ask again, and nothing is left beyond the tab.
    page.driver.refresh()
    page.wait("the pools again", lambda: pool_cell(page, "demo", "state") == "Ready")
    assert not page.find("#login").is_displayed()
    assert page.driver.execute_script("return localStorage.length + document.cookie.length") == 0
    assert KEY not in page.driver.current_url


def test_a_pool_applied_while_the_page_is_open_appears_live(page: Page, daemon: Llorchd) -> None:
    write_atomic(daemon.manifests / "pool-spare.yaml", IDLE_POOL)
    page.wait("the spare pool", lambda: page.all('#pools-table tr[data-pool="spare"]'))
    assert pool_cell(page, "spare", "replicas") == "0/0"
    page.shot("pool-added-live")


def test_the_playground_streams_token_by_token_and_cancel_stops_it(page: Page, daemon: Llorchd) -> None:
    page.tab("playground")
    page.find("#playground-pool option[value='demo']").click()
    limit = page.find("#playground-max")
    limit.clear()
    limit.send_keys(str(LONG_CONTEXT - 100))
    page.find("#playground-send").click()

    seen: list[int] = []

    def grown() -> bool:
        length = len(page.find("#playground-output").get_property("textContent"))
        if length and (not seen or length > seen[-1]):
            seen.append(length)
        return len(seen) >= 3

    page.wait("the reply to grow across reads", grown)
    assert seen == sorted(set(seen)) and len(seen) >= 3, "three reads, each longer than the last"
    page.shot("playground-streaming")
    task_id = page.find("#playground-output").get_attribute("data-task")

    # While it streams, the pools panel shows its slot taken (read live from the API).
    page.tab("pools")
    page.wait("the busy slot", lambda: pool_cell(page, "demo", "slots") == "1/1")
    page.shot("pools-slot-busy")

    page.tab("playground")
    page.find("#playground-cancel").click()
    page.wait(
        "the canceled state",
        lambda: page.find("#playground-status").get_attribute("data-state") == "canceled",
    )
    page.shot("playground-canceled")
    task = daemon.get(f"/v1/tasks/{task_id}")
    assert task["state"] == "canceled"
    # The page shows exactly the tokens the server streamed before the cancel, none after.
    frames = read_sse(daemon.http, f"{daemon.url}/v1/tasks/{task_id}/events")
    assert frames[-1][0] == "error" and frames[-1][1]["code"] == "CANCELED"
    streamed = "".join(d["t"] for e, d in frames if e == "token")
    assert page.find("#playground-output").get_property("textContent") == streamed
    page.tab("pools")
    page.wait("the slot free again", lambda: pool_cell(page, "demo", "slots") == "0/1")
    assert pool_cell(page, "demo", "tps"), "tokens/s measured from the replica's tasks"


def test_a_short_reply_runs_to_its_end(page: Page) -> None:
    page.tab("playground")
    limit = page.find("#playground-max")
    limit.clear()
    limit.send_keys("12")
    page.find("#playground-send").click()
    page.wait("the end", lambda: page.find("#playground-status").get_attribute("data-state") == "done")
    assert page.text("#playground-status").startswith("done: 12 tokens")
    assert page.text("#playground-output")
    page.shot("playground-done")


def test_recent_events_are_listed(page: Page, daemon: Llorchd) -> None:
    page.tab("events")
    page.wait("event rows", lambda: page.all("#events-table tbody tr"))
    shown = page.text("#events-table tbody")
    assert "Pool/demo" in shown
    page.shot("events")


def test_the_gpu_panel_shows_what_nvml_reports(page: Page, daemon: Llorchd) -> None:
    gpus = daemon.get("/v1/gpus")["gpus"]
    page.tab("gpus")
    if gpus:
        page.wait("the GPU boxes", lambda: len(page.all("#gpus .gpu")) == len(gpus))
        assert gpus[0]["name"] in page.text(f'#gpus .gpu[data-gpu="{gpus[0]["index"]}"]')
        assert "VRAM" in page.text("#gpus .gpu .vram")
    else:
        page.wait("the no-GPU note", lambda: page.all("#no-gpu"))
        assert page.text("#no-gpu").startswith("No GPU")
    page.shot("gpus")


def test_the_artifact_browser_shows_lineage_and_the_diff(page: Page, daemon: Llorchd) -> None:
    first = daemon.http.post(
        daemon.url + "/v1/artifacts", json={"kind": "plan", "content": "1. build\n2. test\n"}
    )
    parent = first.json()["id"]
    second = daemon.http.post(
        daemon.url + "/v1/artifacts",
        json={"kind": "plan", "content": "1. build\n2. test\n3. ship\n", "parent": parent, "tags": ["ui"]},
    )
    child = second.json()["id"]
    page.tab("artifacts")
    page.find("#artifacts-refresh").click()
    page.wait("the new artifact", lambda: page.all(f'#artifacts-table tr[data-artifact="{child}"]'))
    page.find(f'#artifacts-table tr[data-artifact="{child}"]').click()
    page.wait("the diff", lambda: page.all("#artifact-diff .add"))
    assert [line.text for line in page.all("#artifact-diff .add")] == ["+3. ship"]
    assert page.find(f'#artifact-lineage a[data-artifact="{parent}"]').text == f"plan {parent[:12]}"
    assert page.text("#artifact-content") == "1. build\n2. test\n3. ship"
    page.shot("artifact-diff")
    page.find(f'#artifact-lineage a[data-artifact="{parent}"]').click()
    page.wait("the parent's children", lambda: page.all(f'#artifact-lineage a[data-artifact="{child}"]'))
    page.shot("artifact-lineage")
