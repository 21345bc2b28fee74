"""gunicorn settings for the web processes (docker-compose.yml passes ``-c gunicorn.conf.py``).

The access log never holds a capability: unlock links and reset or invitation tokens in the
request line are redacted before the line is written."""

from gunicorn.glogging import Logger

from kernel.logs import redact

access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" id=%({x-request-id}o)s'


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U", "q", "f"):
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        return atoms


logger_class = RedactingLogger
