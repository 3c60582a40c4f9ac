"""A worker whose app crashed ends at once, with a non-zero status, so its supervisor restarts it.

How Faust (through mode) reports a crash: a service that fails calls ``Service.crash(exc)``,
which logs ``Crashed reason=...`` and marks that service and every service above it, up to the
Worker, as crashed. A task or a timer that raises crashes the app that way; the Worker then stops
the app and, once everything has stopped, re-raises the reason (status 1). Two gaps remain, and
this module closes them:

- An agent that raises is not a crash: its ``OneForOneSupervisor`` starts a fresh actor, and the
  worker carries on past the batch it failed. :class:`EscalatingSupervisor` still restarts an
  actor that a rebalance cancelled, but turns an error into a crash of the app.
- The orderly stop after a crash can hang (a service waiting for a task that died), leaving the
  process alive in ``Stopping...`` with /metrics answering, so a liveness check passes while
  nothing is processed. :class:`CrashExitWorker` gives that stop ``grace_s`` seconds, then ends
  the process with status 1.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from faust.worker import Worker
from mode import OneForOneSupervisor, ServiceT

log = logging.getLogger(__name__)

#: Seconds a crashed worker has to stop in order (flushing what it can) before it is ended.
CRASH_GRACE_S = 5.0

#: Exit status of a crashed worker.
CRASH_EXIT_STATUS = 1


class EscalatingSupervisor(OneForOneSupervisor):
    """Restarts an agent's actor after a cancellation (a rebalance); crashes the app on an error.

    Set as the app's ``agent_supervisor`` before the worker starts.
    """

    async def restart_service(self, service: ServiceT) -> None:
        reason = service.crash_reason
        if isinstance(reason, Exception):  # CancelledError is not an Exception
            # No supervisor above this one: the crash goes up the tree to the Worker. Raised
            # here so that the crash log line carries the traceback.
            try:
                raise reason
            except Exception:
                await self.crash(reason)
            return
        await super().restart_service(service)


def crash_line(reason: BaseException | None) -> str:
    return (
        f"worker crashed: {reason!r}; exiting with status {CRASH_EXIT_STATUS} so that its "
        "supervisor restarts it (the traceback is in the log above)"
    )


def _end_crashed(reason: BaseException | None, grace_s: float) -> None:
    print(
        f"feedrec: {crash_line(reason)}; it did not stop within {grace_s:g}s",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(CRASH_EXIT_STATUS)


class CrashExitWorker(Worker):
    """A Faust worker that, once its app has crashed, ends the process within ``grace_s``."""

    def __init__(self, *args: Any, grace_s: float = CRASH_GRACE_S, **kwargs: Any) -> None:
        self.grace_s = grace_s
        super().__init__(*args, **kwargs)

    def on_worker_shutdown(self) -> None:
        """Called when the worker starts stopping: after a signal, or right after a crash."""
        super().on_worker_shutdown()
        if self.crashed:
            timer = threading.Timer(self.grace_s, _end_crashed, (self.crash_reason, self.grace_s))
            timer.name = "feedrec-crash-exit"
            timer.daemon = True
            timer.start()
