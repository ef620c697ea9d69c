set shell := ["bash", "-euo", "pipefail", "-c"]

py := ".venv/bin/python"

# Start llorchd on 127.0.0.1:8080 with ./manifests (builds llama-server and the demo model once)
up *ARGS: provision
    exec .venv/bin/llorchd --log-format text {{ARGS}}

# The whole test suite, real llama-server processes included
test *ARGS: provision system-deps
    {{py}} -m pytest {{ARGS}}

# System packages some tests drive for real, installed where this runs as root with apt-get;
# the tests that need one skip with a loud reason where it is missing. One line per package group.
system-deps:
    #!/usr/bin/env bash
    set -uo pipefail
    need() {  # need BINARY PACKAGE...: install the packages unless BINARY is already there
        local binary=$1; shift
        command -v "$binary" >/dev/null && return 0
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" && return 0
        fi
        echo "!!! system-deps: $binary is missing and could not be installed (that needs root, apt-get and its repositories): apt-get install $*; the tests that need it will SKIP" >&2
    }
    need prometheus prometheus  # Prometheus server and promtool: tests/e2e/test_prometheus.py, promtool lint

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
