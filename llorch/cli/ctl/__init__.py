"""`llorchctl`: the kubectl of llorch. It talks to llorchd over HTTP only.

One module per area, each with the commands it lists in `COMMANDS`; `_AREAS` below is the one
place they are registered. A new command is a new module (or a function in the area it belongs
to) and its name in `_AREAS`. What commands share (settings, `error:` lines, argument parsing) is
in `common`; the group and its global options in `group`.

Exit codes: 0 ok, 1 error, 2 usage (click's), 130 interrupted; `diff` follows kubectl diff
(1 = differences, 2 = error).
"""

from __future__ import annotations

from llorch.cli.ctl import (
    apply,
    artifacts,
    audit,
    cache,
    chat,
    completion,
    config,
    doctor,
    events,
    logs,
    objects,
    pools,
    pull,
    queue,
    run,
    token,
    top,
    tunnel,
    version,
)
from llorch.cli.ctl.group import main

_AREAS = (
    apply,
    objects,
    pools,
    run,
    artifacts,
    pull,
    cache,
    top,
    audit,
    token,
    config,
    tunnel,
    doctor,
    version,
    logs,
    events,
    queue,
    chat,
    completion,
)

for _area in _AREAS:
    for _command in _area.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
