"""One attempt at sending a notification: a webhook's POST, a command, a mail.

`Sender.send` returns when the notification was delivered, or raises
`AttemptFailed` saying why and whether another attempt could fare better; the
notifier (`ccd.daemon.notifier`) retries and records.  Each attempt is bounded by
the config's ``notify_delivery.timeout``; a command (or sendmail) still running
then is killed with its process group, and so is one running when the daemon
stops.  Mail never touches the network here: the message goes to a local
sendmail-compatible program (``sendmail -t -i``), which is the system's to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shlex
import signal
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ccd import __version__
from ccd.fold import dumps
from ccd.notify import environment, mail_message, retryable
from ccd.spec.notify import SENDMAIL, Notifier

if TYPE_CHECKING:
    import httpx

#: the end of a failed command's output that its error message keeps
_TAIL = 300


class AttemptFailed(Exception):
    """An attempt did not deliver; `retry`: another one may (a refusal would not)."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry


class Sender:
    """Sends notifications, one attempt at a time; owns the HTTP client it needs."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        host = socket.gethostname() or "localhost"
        #: the mail's From: (sendmail sets the envelope sender itself)
        self._from = f"ccd <{getpass.getuser()}@{host}>"
        self._domain = host
        #: where commands start (the daemon's own directory is wherever it was started)
        self._home = os.path.expanduser("~")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(self, notifier: Notifier, body: Mapping[str, Any]) -> None:
        if notifier.webhook:
            await self._post(notifier.webhook, body)
        elif notifier.command:
            data = (dumps(dict(body)) + "\n").encode()
            argv = ["sh", "-c", notifier.command]
            await self._run(argv, data, {**os.environ, **environment(body)}, "the command")
        else:
            message = mail_message(notifier, body, self._from, self._domain)
            argv = [*shlex.split(notifier.via or SENDMAIL), "-t", "-i"]
            await self._run(argv, message.as_bytes(), dict(os.environ), argv[0])

    async def _post(self, url: str, body: Mapping[str, Any]) -> None:
        import httpx  # on the first webhook: the daemon starts without it

        if self._http is None:
            # redirects are not followed: a POST that moved is the config's to fix
            self._http = httpx.AsyncClient(
                timeout=self._timeout, headers={"User-Agent": f"ccd/{__version__}"}
            )
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(body["id"])}
        try:
            # httpx's timeout bounds each step; this, the whole exchange
            async with asyncio.timeout(self._timeout):
                response = await self._http.post(url, content=dumps(dict(body)), headers=headers)
        except (httpx.TimeoutException, TimeoutError):
            raise AttemptFailed(f"no answer within {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            # the URL may hold a token: it never goes into an event or a log line
            text = str(exc).replace(url, "<url>") or type(exc).__name__
            raise AttemptFailed(text) from None
        if not response.is_success:
            status = response.status_code
            raise AttemptFailed(f"HTTP {status} {response.reason_phrase}", retry=retryable(status))

    async def _run(self, argv: list[str], stdin: bytes, env: dict[str, str], what: str) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=self._home,
                start_new_session=True,  # its own group: a timeout kills all it started
            )
        except OSError as exc:
            # a missing sendmail stays missing for the next attempt
            raise AttemptFailed(f"cannot run {what}: {exc.strerror or exc}", retry=False) from None
        try:
            async with asyncio.timeout(self._timeout):
                output, _ = await proc.communicate(stdin)
        except TimeoutError:
            raise AttemptFailed(f"{what} ran over {self._timeout:g}s and was killed") from None
        finally:
            if proc.returncode is None:  # timed out, or the daemon is stopping
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc.returncode != 0:
            tail = output.decode(errors="replace").strip()[-_TAIL:]
            last = tail.splitlines()[-1] if tail else ""
            raise AttemptFailed(f"{what} exited {proc.returncode}" + (f": {last}" if last else ""))
