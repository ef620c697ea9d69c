set shell := ["bash", "-euo", "pipefail", "-c"]

py := ".venv/bin/python"

# Start llorchd on 127.0.0.1:8080 with ./manifests (builds llama-server and the demo model once)
up *ARGS: provision
    exec .venv/bin/llorchd --log-format text {{ARGS}}

# The whole test suite, real llama-server processes included
test *ARGS: system-deps provision
    {{py}} -m pytest {{ARGS}}

# System packages tests drive for real (Chromium, Prometheus): apt-get installs them as root, else a
# loud line and the tests that need one skip saying why
system-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    updated=""
    # ensure "BINARIES" "PACKAGES": the Debian packages that give those binaries, unless all are there.
    ensure() {
        local binary missing=""
        for binary in $1; do command -v "$binary" >/dev/null || missing="$missing $binary"; done
        [ -z "$missing" ] && return 0
        if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
            echo "!!! system-deps: missing$missing; install $2 (as root: apt-get install $2)" >&2
            return 0
        fi
        [ -n "$updated" ] || { apt-get update -qq || echo "!!! system-deps: apt-get update failed" >&2; updated=yes; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $2 \
            || echo "!!! system-deps: apt-get could not install $2" >&2
    }
    # The web UI tests (tests/e2e/test_ui.py): Chromium and its WebDriver.
    ensure "chromium chromedriver" "chromium chromium-driver"
    # Prometheus server and promtool: tests/e2e/test_prometheus.py and the promtool lint of /metrics.
    ensure "prometheus promtool" "prometheus"

# Ruff, formatting, mypy --strict and the import contracts (.importlinter)
lint: install
    .venv/bin/ruff check llorch tests bench
    .venv/bin/ruff format --check llorch tests bench
    .venv/bin/mypy
    .venv/bin/lint-imports

# Regenerate schema/*.schema.json from the pydantic models
schema: install
    {{py}} -m llorch.resources.schema schema

# llorch vs llama-server direct, streaming at 1, 8 and 32 concurrent clients
bench *ARGS: provision
    {{py}} bench/streaming.py {{ARGS}}

# Build llama-server and generate the demo model into the cache, if not there yet
provision: install
    .venv/bin/llorchd provision

# The project virtualenv with llorch and its dev tools; reinstalls only when pyproject.toml changes
install:
    #!/usr/bin/env bash
    set -euo pipefail
    test -x {{py}} || python3 -m venv .venv
    stamp=".venv/.llorch-installed-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        {{py}} -m pip install -q --upgrade pip
        {{py}} -m pip install -q -e '.[dev]'
        rm -f .venv/.llorch-installed-*
        touch "$stamp"
    fi
