"""Gunicorn configuration used by `make run`, `make run-prod` and the gunicorn tests.

Request line: tokens are the images, so URLs are long, but not unbounded. The line is
limited to EMMM_MAX_TOKEN_CHARS (read the same way settings.py reads it) plus 32 KiB for
the path, format suffix and query string, so a URL somewhat over the site's token limit
still reaches Django (its explanatory 414 page) and anything longer is refused by gunicorn
(400) after reading at most that many bytes. Gunicorn silently caps `limit_request_line`
at its module constant MAX_REQUEST_LINE (8190; benoitc/gunicorn#3171, fix still open in
#3741), so that constant is raised to our bound here, before any worker starts; `0`
(unlimited) made a 10 MB line cost 9 s of CPU (issue 8.2).
"""
import os

import gunicorn.http.message

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))


def _env_int(name: str, default: int) -> int:
    """Read an integer like settings.env_int does (unset or empty: the default)."""
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


REQUEST_LINE_SLACK = 32 * 1024
limit_request_line = _env_int("EMMM_MAX_TOKEN_CHARS", 100_000) + REQUEST_LINE_SLACK
gunicorn.http.message.MAX_REQUEST_LINE = max(gunicorn.http.message.MAX_REQUEST_LINE, limit_request_line + 1)
limit_request_field_size = 16384

# Decoding big renderings leaves workers at 700-830 MB; recycle each after about this many
# requests (the jitter spreads the restarts so workers do not all restart at once).
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 100)
# The app (Django, the codec, torch: about 3-4 s of imports) is loaded once in the master and
# workers are forked from it, so a recycled worker serves again within milliseconds. Without
# this, at cached-image speed (~1,000 req/s) every worker restarted every second or two and
# spent seconds importing: most of the serving benchmark's time (issue 8, throughput). Torch
# starts no threads at import, so forking after it is safe.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1").strip().lower() not in {"0", "false", "no", "off"}

# Access log: whole tokens never reach it (emmmsite/gunicorn_logging.py).
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
logger_class = "emmmsite.gunicorn_logging.TokenRedactingLogger"

# X-Forwarded-Proto/-For are trusted only behind a TLS proxy (the same switch as Django's
# SECURE_PROXY_SSL_HEADER); otherwise any client on an allowed address could claim https.
if os.environ.get("DJANGO_BEHIND_TLS_PROXY", "").strip().lower() in {"1", "true", "yes", "on"}:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
else:
    forwarded_allow_ips = ""
