"""gunicorn settings for the web processes (docker-compose.yml passes ``-c gunicorn.conf.py``).

The access log never holds a capability: unlock links and reset or invitation tokens in the
request line are redacted before the line is written.

With PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics to files there
(kernel.metrics); the master clears this host's files at start and marks each worker that
exits, so its live values leave the scrape."""

import glob
import os
import socket
from collections.abc import MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.http import Request
from gunicorn.http.wsgi import Response
from gunicorn.workers.base import Worker
from prometheus_client import multiprocess

from kernel.logs import redact
from kernel.metrics import multiprocess_dir, process_identifier

if TYPE_CHECKING:
    from gunicorn.glogging import _AtomsDict

access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" id=%({x-request-id}o)s'


class RedactingLogger(Logger):
    def atoms(
        self,
        resp: Response,
        req: Request,
        environ: MutableMapping[str, Any],
        request_time: timedelta,
    ) -> "_AtomsDict":
        atoms = super().atoms(resp, req, environ, request_time)
        names: tuple[Literal["r", "U", "q", "f"], ...] = ("r", "U", "q", "f")
        for name in names:
            value = atoms.get(name)
            if isinstance(value, str):
                atoms[name] = redact(value)
        return atoms


logger_class = RedactingLogger


def on_starting(server: Arbiter) -> None:
    directory = multiprocess_dir()
    if directory:
        os.makedirs(directory, exist_ok=True)
        # Files of this host's earlier run; other containers sharing the folder keep theirs.
        for path in glob.glob(os.path.join(directory, f"*_{socket.gethostname()}-*.db")):
            os.remove(path)


def child_exit(server: Arbiter, worker: Worker) -> None:
    if multiprocess_dir():
        dead = process_identifier(int(worker.pid))
        multiprocess.mark_process_dead(dead)  # type: ignore[no-untyped-call]
