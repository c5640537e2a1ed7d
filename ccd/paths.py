"""Where ccd keeps its files (XDG), stdlib + platformdirs only so the client stays fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "ccd"
#: sun_path is 108 bytes on Linux and 104 on macOS and the BSDs, with the terminating NUL
MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/ccd``, or ``/tmp/ccd-$UID`` when there is no runtime dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / APP
    return Path(f"/tmp/ccd-{os.getuid()}")


def socket_path() -> Path:
    """The daemon's API socket: ``$CCD_SOCKET`` or ``<runtime dir>/ccd.sock``."""
    override = os.environ.get("CCD_SOCKET")
    return Path(override) if override else runtime_dir() / "ccd.sock"


def state_dir() -> Path:
    """Database, daemon log and job run directories: ``$XDG_STATE_HOME/ccd``."""
    # platformdirs is imported where needed: `ccctl status` only needs the socket
    from platformdirs import user_state_path

    return user_state_path(APP)


def config_path() -> Path:
    """The daemon config: ``$CCD_CONFIG`` or ``$XDG_CONFIG_HOME/ccd/config.yaml``."""
    override = os.environ.get("CCD_CONFIG")
    if override:
        return Path(override)
    from platformdirs import user_config_path

    return user_config_path(APP) / "config.yaml"
