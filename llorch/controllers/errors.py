"""The controllers' errors in the one error model.

A reconcile that raises a retriable error is tried again with per-key backoff; one that raises
a non-retriable error (like controller-runtime's TerminalError) waits for its object to change.
"""

from __future__ import annotations

from llorch.resources.errors import LlorchError


class ControllerError(LlorchError):
    """Raised by a controller, or handed by one to the data plane (a replica stopped under its tasks)."""
