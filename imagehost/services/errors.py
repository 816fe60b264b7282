"""The refusals services raise: a user-safe message and the HTTP status that fits it.

Imports nothing but the standard library at import time (``outage_error`` and
``refused_request_error`` import redis and Django when called), so parsers, selectors and
exception handlers can use it without pulling in the codec (and torch).
"""
from __future__ import annotations

from uuid import UUID


class ServiceError(Exception):
    """A refusal with a user-safe message and the HTTP status that fits it."""

    status: int = 400
    code: str = "invalid"
    retry_after: int | None = None  # seconds, sent as Retry-After (a 503 that will pass)

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # the one input field refused, where there is one (the API names it)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class InvalidInput(ServiceError):
    status, code = 400, "invalid"


class BadToken(ServiceError):
    status, code = 400, "bad_token"


class TokenTooLong(ServiceError):
    status, code = 414, "token_too_long"


class TokenBlocked(ServiceError):
    status, code = 410, "blocked"


class LinkExpired(ServiceError):
    status, code = 410, "expired"


class LinkPending(ServiceError):
    """A short link reserved for an upload that is still being encoded (it will work soon)."""

    status, code = 503, "encoding"
    retry_after = 3


class LinkFailed(ServiceError):
    """A short link reserved for an upload whose encoding failed: it will never show a picture."""

    status, code = 410, "encode_failed"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class UploadTooLarge(ServiceError):
    status, code = 413, "too_large"


class UnsupportedImage(ServiceError):
    status, code = 415, "not_an_image"


class SlugTaken(ServiceError):
    status, code = 409, "slug_taken"


class IdempotencyKeyReused(ServiceError):
    """An upload's Idempotency-Key came again with another image or other options."""

    status, code = 422, "idempotency_key_reused"


class ModelUnavailable(ServiceError):
    """This server cannot run the codec model a token or an upload needs right now."""

    status, code = 503, "model_unavailable"
    retry_after = 60  # it takes an operator (weights, a device): clients back off, as from any 503


class DecoderBusy(ServiceError):
    """No decode slot free in this worker or, for a heavy token, on this machine (issue 8.3)."""

    status, code = 503, "busy"
    retry_after = 5


class DependencyUnavailable(ServiceError):
    """A service every such request needs cannot be reached (``outage_error``): a 503 with a
    Retry-After, since it will pass."""

    status = 503
    retry_after = 5
    default_message = "This server is unavailable for a moment; try again in a few seconds."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)


class CacheUnavailable(DependencyUnavailable):
    """The shared cache (Redis): rate limits, short-link look-ups and the decode cache live there."""

    code = "cache_unavailable"
    default_message = "This server's cache is unavailable for a moment; try again in a few seconds."


class DatabaseUnavailable(DependencyUnavailable):
    """The database: refused, no answer within EMMM_DATABASE_TIMEOUT_S, or the connection lost."""

    code = "database_unavailable"
    default_message = "This server's database is unavailable for a moment; try again in a few seconds."


class MailUnavailable(DependencyUnavailable):
    """The mail server (``EMAIL_BACKEND``) refused or did not answer."""

    code = "mail_unavailable"
    default_message = "The mail could not be sent: this server's mail service is unavailable. Try again later."


class RequestTooLarge(ServiceError):
    status, code = 413, "too_large"


def outage_error(exc: BaseException) -> ServiceError | None:
    """The ServiceError to answer for a dependency outage (Redis unreachable or timing out; the
    database unreachable or its connection lost), or None for any other exception."""
    from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return CacheUnavailable()
    if isinstance(exc, OperationalError):
        # Only a connection that failed or broke: an error on a live one (a missing table, a
        # lock timeout) is not an outage and stays a 500 to be fixed.
        raw = connections[DEFAULT_DB_ALIAS].connection
        if raw is None or getattr(raw, "closed", False):
            return DatabaseUnavailable()
    return None


def dependency_outage(exc: BaseException) -> DependencyUnavailable | None:
    """``exc`` as a dependency outage (the database, the cache): the DependencyUnavailable it
    is or stands for (``outage_error``), or None. The encode task retries these with a backoff."""
    if isinstance(exc, DependencyUnavailable):
        return exc
    outage = outage_error(exc)
    return outage if isinstance(outage, DependencyUnavailable) else None


def refused_request_error(exc: BaseException) -> ServiceError | None:
    """The ServiceError for Django's refusal of a request body (fields or body over
    DATA_UPLOAD_MAX_MEMORY_SIZE: 413; too many fields or files, a file where none is taken, a
    malformed form: 400), or None for any other exception. The site's 400 handler and the API's
    exception handler both answer with it."""
    from django.conf import settings
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
    from django.http.multipartparser import MultiPartParserError

    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return RequestTooLarge(f"The request is too large: more than {limit:,} bytes besides its files.")
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return InvalidInput(f"The request has too many fields (more than {limit:,}).", code="too_many_fields")
    from imagehost.uploadhandlers import FilesNotAccepted

    if isinstance(exc, FilesNotAccepted):
        return InvalidInput("This address takes no files: send the form without one.", code="files_not_accepted")
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return InvalidInput(f"Too many files in one request (more than {limit:,}).", code="too_many_files")
    if isinstance(exc, MultiPartParserError):  # a part header over the limit, bad base64, ...
        return InvalidInput(f"The form could not be read: {str(exc).rstrip('.')}.", code="malformed_form")
    return None


QUEUE_UNAVAILABLE_MESSAGE = (
    "The encoding queue is unavailable right now. Your upload is kept and will be "
    "encoded when the queue is back."
)


class BrokerUnavailable(ServiceError):
    """The task queue cannot be reached; the job stays saved (queued) and is sent later.

    Raised by ``jobs.send_job``. Uploads do not surface it as an error: the job is kept,
    so both surfaces answer as accepted, with a warning (see ``uploads.Submission``).
    """

    status, code = 503, "queue_unavailable"

    def __init__(self, message: str = QUEUE_UNAVAILABLE_MESSAGE, job_ids: list[UUID] | None = None):
        super().__init__(message)
        self.job_ids = job_ids or []


class RetryableEncodeError(Exception):
    """An unexpected failure inside an encode; the task should try again."""


class JobInterrupted(RetryableEncodeError):
    """A dependency (the database, the cache) failed after the worker claimed the job (raised by
    ``jobs.run_encode_job``); the task retries with a backoff, and no attempt is counted.

    ``resume_started``: None when the job was put back in the queue; else the database could
    not be written either, the job is still ``running`` as this claim left it, and the retry
    passes this (the claim's ``started``) to take it back."""

    def __init__(self, message: str, *, resume_started=None):
        super().__init__(message)
        self.resume_started = resume_started
