"""Tell systemd how the kiosk is doing (the ``sd_notify`` protocol): ready, and still alive.

On the appliance the desk UI runs in ``medpass-kiosk.service`` with ``Type=notify``,
``WatchdogSec=`` and ``NotifyAccess=all`` (the UI is a grandchild of the unit's main process:
cage, then foot, then ``kiosk``). The UI's one-second timer calls :func:`alive`; when its event
loop hangs the pings stop and systemd restarts the whole session.

The protocol is one datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX`` socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace), so the standard library is
enough. Without the variable (development, tests, ``kiosk demo``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def _address(env: Mapping[str, str]) -> str | None:
    """The socket address from ``NOTIFY_SOCKET``, or None when unset or not a Unix socket."""
    value = env.get("NOTIFY_SOCKET", "")
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # unset, or a kind this module does not speak (vsock: systemd >= 253)


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (for example ``"READY=1"``) to the service manager.

    Parameters
    ----------
    state
        One or more ``KEY=VALUE`` lines (see ``sd_notify(3)``).
    env
        Where to read ``NOTIFY_SOCKET``; the process environment by default.

    Returns
    -------
    bool
        True when the datagram was sent; False when there is no manager to tell, or it could
        not be reached. Never raises: the desk must not stop because its supervisor went away.
    """
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def alive(env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the UI is up and its event loop turns: ``READY=1`` and ``WATCHDOG=1``.

    Call it from a timer of the event loop (once a second). Repeating ``READY=1`` is harmless
    (systemd only acts on the first), and it makes the unit "started" only once the UI draws.
    """
    return notify("READY=1\nWATCHDOG=1", env)
