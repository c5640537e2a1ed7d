"""The API socket: created by ccd (0600 in a 0700 directory) or passed by systemd."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from ccd.errors import CcdError
from ccd.paths import MAX_SOCKET_PATH

#: the first file descriptor systemd passes (sd_listen_fds)
SD_LISTEN_FDS_START = 3


def systemd_socket() -> socket.socket | None:
    """The listening socket systemd passed us (socket activation), if any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for our children
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    os.set_inheritable(sock.fileno(), False)
    return sock


def _in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_unix_socket(path: Path) -> socket.socket:
    """Bind and listen on `path`; refuse if another daemon answers there."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise CcdError(
            f"socket path {path} is longer than {MAX_SOCKET_PATH} bytes; "
            "set CCD_SOCKET or XDG_RUNTIME_DIR to a shorter directory"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    if path.exists() or path.is_symlink():
        if _in_use(path):
            raise CcdError(f"another ccd daemon is already listening on {path}")
        path.unlink()  # left behind by a daemon that died
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others can connect
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise CcdError(f"cannot create the API socket {path}: {exc}") from exc
    finally:
        os.umask(old_umask)
    sock.listen(128)
    return sock


def notify_systemd(message: str) -> None:
    """sd_notify(3): tell a Type=notify service manager about our state (no-op elsewhere)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
