"""``ccd``: the daemon's command line (``ccd run`` starts it in the foreground)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from ccd import __version__
from ccd.errors import CcdError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccd",
        description="The ccd workflow daemon. Usually started by `ccctl` or systemd; "
        "`ccd run` runs it in the foreground.",
    )
    parser.add_argument("--version", action="version", version=f"ccd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument(
        "--config",
        type=Path,
        default=None,
        help="daemon config file (default: $CCD_CONFIG or $XDG_CONFIG_HOME/ccd/config.yaml)",
    )
    run.add_argument(
        "--socket",
        type=Path,
        default=None,
        help="API socket path (default: $CCD_SOCKET or $XDG_RUNTIME_DIR/ccd/ccd.sock)",
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="database and run directories (default: $XDG_STATE_HOME/ccd)",
    )
    run.add_argument(
        "--platform-fallbacks",
        default=None,
        metavar="LIST",
        help="a testing aid: use the portable mechanism for exits, files, processes "
        "(comma-separated, or all; default: $CCD_PLATFORM_FALLBACKS)",
    )
    run.add_argument(
        "--log-level",
        default=os.environ.get("CCD_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from ccd.daemon.memory import fix_malloc_thresholds

    fix_malloc_thresholds()  # before the daemon allocates its first big buffers
    # imported here so `ccd --help` stays instant
    from ccd.config import load_config
    from ccd.daemon.server import Daemon
    from ccd.platform import FALLBACKS_ENV, parse_fallbacks

    try:
        config = load_config(args.config)
        updates = {
            k: v
            for k, v in (("socket", args.socket), ("state_dir", args.state_dir))
            if v is not None
        }
        if updates:
            config = config.model_copy(update=updates)
        _own_environment(config.environment)
        fallbacks = args.platform_fallbacks
        forced = parse_fallbacks(os.environ.get(FALLBACKS_ENV) if fallbacks is None else fallbacks)
        asyncio.run(Daemon(config, forced).run())
    except CcdError as exc:
        print(f"ccd: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def _own_environment(block: dict[str, str]) -> None:
    """The config's ``environment:`` block into this process's environment, before
    the executors copy it: every local job inherits it from here."""
    from ccd.daemon.environment import apply

    applied = apply(block, os.environ)
    log = logging.getLogger("ccd.daemon")
    if applied.stale_unit:
        log.warning(
            "the systemd unit's Environment= lines come from another environment: block "
            "than the config's; applied the config's: run `ccctl daemon install` again"
        )
    if applied.names:
        how = "set" if applied.changed else "already set by the unit"
        log.info("environment: %s %s", ", ".join(applied.names), how)
    log.info("jobs start with PATH=%s", os.environ.get("PATH", ""))


if __name__ == "__main__":
    main()
