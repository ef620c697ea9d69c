set shell := ["bash", "-euo", "pipefail", "-c"]

py := ".venv/bin/python"

# Start llorchd on 127.0.0.1:8080 with ./manifests (builds llama-server and the demo model once)
up *ARGS: provision
    exec .venv/bin/llorchd --log-format text {{ARGS}}

# The whole test suite, real llama-server processes included
test *ARGS: provision
    {{py}} -m pytest {{ARGS}}

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
