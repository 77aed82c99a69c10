"""The port check every host service runs before it starts."""

from __future__ import annotations

import socket

import pytest

from goldsignals.processes import ensure_port_free


class PortError(RuntimeError):
    pass


def _check(port: int) -> None:
    ensure_port_free(
        "127.0.0.1", port, service="test server", setting="X_PORT", error=PortError
    )


def test_a_listener_makes_the_port_busy() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(PortError, match=rf"127.0.0.1:{port}, the port of the "):
            _check(port)


def test_time_wait_of_a_stopped_server_does_not_count() -> None:
    """A server that closed its connections first leaves them in TIME-WAIT."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()
    client.recv(1)
    client.close()
    listener.close()

    _check(port)
