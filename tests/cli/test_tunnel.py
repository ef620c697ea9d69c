"""The ssh command line of a tunnel (the real ssh runs in tests/e2e/test_tunnel.py)."""

from __future__ import annotations

import pytest

from llorch.cli.tunnel import Forward, TunnelError, host_of


def test_the_forward_binds_loopback_and_ends_when_the_link_dies() -> None:
    forward = Forward("me@box.lan", 18080, ssh_args=("-p", "2222"))
    command = forward.command()
    assert command[:2] == ["ssh", "-N"]
    assert command[command.index("-L") + 1] == "127.0.0.1:18080:127.0.0.1:8080"
    assert "ExitOnForwardFailure=yes" in command and "ServerAliveInterval=30" in command
    assert command[-3:] == ["-p", "2222", "me@box.lan"], "ssh options before the destination"
    assert forward.url == "http://127.0.0.1:18080"


def test_a_destination_that_would_be_an_option_is_refused() -> None:
    with pytest.raises(TunnelError, match="not an ssh destination"):
        Forward("-oProxyCommand=touch /tmp/x", 1)


def test_the_context_is_named_for_the_host() -> None:
    assert host_of("me@box.lan") == "box.lan" and host_of("box") == "box"
