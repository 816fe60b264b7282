"""Gunicorn configuration used by `make run`, `make run-prod` and the gunicorn tests.

Request line: tokens are the images, so URLs are long, but not unbounded. The line is
limited to EMMM_MAX_TOKEN_CHARS (default 100,000, as in settings.py) plus 32 KiB for
the path, format suffix and query string, so a URL somewhat over the site's token limit
still reaches Django (its explanatory 414 page) and anything longer is refused by gunicorn
(400) after reading at most that many bytes. Gunicorn silently caps `limit_request_line`
at its module constant MAX_REQUEST_LINE (8190; benoitc/gunicorn#3171, fix still open in
#3741), so that constant is raised to our bound here, before any worker starts; `0`
(unlimited) made a 10 MB line cost 9 s of CPU (issue 8.2).
"""
import os

import gunicorn.http.message

def _env_int(name: str, default: int) -> int:
    """An integer from the environment; unset or empty: the default (as in settings.py,
    emmmsite/environment.py); anything else that is not a whole number stops gunicorn, naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name}={raw!r}: expected a whole number") from None


def _bind_address() -> str:
    """``GUNICORN_BIND``, else ``HOST:PORT`` (an IPv6 host in brackets, as gunicorn reads it)."""
    if os.environ.get("GUNICORN_BIND", "").strip():
        return os.environ["GUNICORN_BIND"].strip()
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{_env_int('PORT', 8000)}"


bind = _bind_address()
workers = _env_int("GUNICORN_WORKERS", 2)
# 8 threads: a decode holds its thread for seconds, and at most threads - 2 of them decode at
# once (EMMM_DECODES_PER_WORKER in settings.py), so 2 stay free for pages (issue 8.3); a
# browser's 6 parallel image requests still fit in one worker.
threads = _env_int("GUNICORN_THREADS", 8)
timeout = _env_int("GUNICORN_TIMEOUT", 60)


REQUEST_LINE_SLACK = 32 * 1024
limit_request_line = _env_int("EMMM_MAX_TOKEN_CHARS", 100_000) + REQUEST_LINE_SLACK
gunicorn.http.message.MAX_REQUEST_LINE = max(gunicorn.http.message.MAX_REQUEST_LINE, limit_request_line + 1)
limit_request_field_size = 16384

# Worker recycling, by memory rather than by request count (issue 8.8: workers kept 700-830 MB
# after big decodes). A worker whose resident memory is over GUNICORN_MAX_WORKER_RSS_MB (640;
# a worker that has loaded the model and decoded is at 320-370 MB here) finishes its current
# request with `Connection: close` and is replaced. Counting requests (the former
# max_requests = 1000) restarted each worker every second or two at cached-image speed; each
# restart dropped the worker's keep-alive connections with requests already sent on them
# (wrk: 91 read errors in 20 s on a static file, p99 2.3 s, 635 req/s; without it: 0 errors,
# p99 122 ms, 2,881 req/s; docs/benchmarks-serving.md). GUNICORN_MAX_REQUESTS still works.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 0)
max_worker_rss_bytes = _env_int("GUNICORN_MAX_WORKER_RSS_MB", 640) * 1024 * 1024
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """This process's resident memory (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


def pre_request(worker, req) -> None:
    """Recycle a worker over the memory bound: this is its last request (gunicorn then closes it).

    Checked only when this is the worker's one request in flight (gthread keeps them in
    ``worker.futures``), so what counts is the memory it kept, not what concurrent decodes hold
    for a moment (a 512² decode peaks about 300 MB above what it keeps).
    """
    if len(getattr(worker, "futures", ())) > 1:
        return
    if max_worker_rss_bytes and worker.alive and resident_bytes() > max_worker_rss_bytes:
        worker.log.info("Autorestarting worker after current request: %d MB resident", resident_bytes() >> 20)
        worker.alive = False


# The app (Django, the codec, torch: about 3-4 s of imports) is loaded once in the master and
# workers are forked from it, so a recycled worker serves again within milliseconds instead
# of spending seconds importing (with the former request-count recycling that was most of
# the serving benchmark's time). Torch starts no threads at import, so forking after it is safe.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1").strip().lower() not in {"0", "false", "no", "off"}

# Torch threads per web worker (EMMM_WEB_TORCH_THREADS, default 1). A web worker runs a
# decode per request thread, so its parallelism comes from threads and workers; with torch's
# default (one thread per core) a single heavy decode kept every core busy and the home page
# waited behind it (issue 8.3). Applied after the codec's own set-up (EMMM_TORCH_THREADS,
# which is the Celery worker's), so that the web value wins.
web_torch_threads = max(1, _env_int("EMMM_WEB_TORCH_THREADS", 1))


def post_worker_init(worker) -> None:
    """Each web worker decodes with ``web_torch_threads`` torch threads."""
    import torch

    from codec.models.base import configure_torch

    configure_torch()
    torch.set_num_threads(web_torch_threads)
    worker.log.info("Web worker decodes with %d torch thread(s)", torch.get_num_threads())


# Access log: whole tokens never reach it (emmmsite/gunicorn_logging.py).
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
logger_class = "emmmsite.gunicorn_logging.TokenRedactingLogger"

# Behind a TLS proxy (DJANGO_BEHIND_TLS_PROXY) gunicorn takes X-Forwarded-Proto (the request's
# scheme, which Django reads from it) only from FORWARDED_ALLOW_IPS, the proxies' addresses;
# the site reads X-Forwarded-For from the same addresses only (imagehost/ratelimits.client_ip).
# Otherwise any client on an allowed address could claim https.
if os.environ.get("DJANGO_BEHIND_TLS_PROXY", "").strip().lower() in {"1", "true", "yes", "on"}:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
else:
    forwarded_allow_ips = ""
