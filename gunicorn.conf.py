"""Gunicorn configuration used by `make run-prod` (and the gunicorn test).

Tokens are the images, so URLs can be long: gunicorn's default 4,094-byte request line
would refuse a 60,000-character token URL. The request line is unlimited here and the
site itself answers 414 above EMMM_MAX_TOKEN_CHARS.
"""
import os

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
limit_request_line = 0  # unlimited; Django enforces EMMM_MAX_TOKEN_CHARS (414)
limit_request_field_size = 16384
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
