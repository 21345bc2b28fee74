"""gunicorn settings for the web processes (docker-compose.yml passes ``-c gunicorn.conf.py``).

The access log never holds a capability: unlock links and reset or invitation tokens in the
request line are redacted before the line is written.

With PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics to files there
(kernel.metrics); the master clears this host's files at start and marks each worker that
exits, so its live values leave the scrape."""

import glob
import os
import socket
from typing import Any

from gunicorn.glogging import Logger
from prometheus_client import multiprocess

from kernel.logs import redact
from kernel.metrics import multiprocess_dir, process_identifier

access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" id=%({x-request-id}o)s'


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U", "q", "f"):
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        return atoms


logger_class = RedactingLogger


def on_starting(server: Any) -> None:
    directory = multiprocess_dir()
    if directory:
        os.makedirs(directory, exist_ok=True)
        # Files of this host's earlier run; other containers sharing the folder keep theirs.
        for path in glob.glob(os.path.join(directory, f"*_{socket.gethostname()}-*.db")):
            os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    if multiprocess_dir():
        multiprocess.mark_process_dead(process_identifier(worker.pid))
