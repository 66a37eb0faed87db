"""The API server's access log: gunicorn's default line, built for that line only."""

from __future__ import annotations

from gunicorn import glogging

# gunicorn's default format (the "combined" log format of Apache).
FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


class AccessLogger(glogging.Logger):
    """gunicorn's logger, with only the fields FORMAT uses.

    The stock one also copies every request header, response header and WSGI environment
    variable into the line's fields on every request, which cost a twentieth of the API's
    CPU on reads.
    """

    def atoms(self, resp, req, environ, request_time):
        sent = getattr(resp, "sent", None)
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
            "s": str(resp.status).split(None, 1)[0],
            "b": str(sent) if sent is not None else "-",
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
        }
