"""gunicorn settings for the web processes (docker-compose.yml passes ``-c gunicorn.conf.py``).

The access log never holds a capability: unlock links and reset or invitation tokens in the
request line are redacted before the line is written."""

from collections.abc import MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from gunicorn.glogging import Logger
from gunicorn.http import Request
from gunicorn.http.wsgi import Response

from kernel.logs import redact

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
