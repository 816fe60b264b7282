"""``POST /api/v1/images`` and ``GET /api/v1/jobs/{id}`` (also used by the upload page's script)."""

from __future__ import annotations

import time
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from django.conf import settings

from imagehost import concurrency, selectors
from imagehost.budgets import max_chars_for_budget
from imagehost.models import EncodeJob, EncodeKind
from imagehost.services import uploads
from imagehost.services.errors import QUEUE_UNAVAILABLE_MESSAGE, InvalidInput
from imagehost.uploadhandlers import BoundedMemoryUploadHandler

from .. import absolute_urls, serializers as s
from ..parsers import OctetStreamParser, RawImageParser
from ..throttling import UploadThrottle
from .base import ApiView, errors, user_or_none

WAIT_POLL_SECONDS = 0.2
#: What ``uploads.check_idempotency_key`` takes (IDEMPOTENCY_KEY_RE), as a schema.
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}


class ImageUploadView(ApiView):
    """Queue an image for encoding (validated at once, encoded by a worker)."""

    parser_classes = [MultiPartParser, FormParser, RawImageParser, OctetStreamParser]
    permission_classes = [permissions.AllowAny]
    throttle_classes = [UploadThrottle]
    query_params_allowed = frozenset(s.UploadQuerySerializer().fields)
    serializer_class = s.UploadSerializer

    def initialize_request(self, request, *args, **kwargs) -> Request:
        # Before anything reads the body: keep multipart files in memory up to our own limit.
        request.upload_handlers = [BoundedMemoryUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        operation_id="images_upload",
        summary="Upload an image",
        description=(
            "Send the image as multipart field `file` (other fields alongside), or as the raw request "
            "body with `Content-Type: image/...` (options as query parameters). The file is checked at "
            "once; encoding runs in the background. Answers 202 with the job; poll `status_url`. "
            "With `wait=N` a signed-in client's request waits up to N seconds and answers 201 if the job "
            "finished; anonymous clients, and clients over this server's small cap on waiting requests, "
            "get the 202 at once. A signed-in upload's `short_url` is there at once (it shows the picture "
            "once encoded); `deletion_url` is a secret link that deletes the upload without signing in.\n\n"
            "Retrying safely: send `Idempotency-Key: <a new UUID>` (signed-in clients). A request that "
            "repeats an earlier upload's key with the same image and options gets that upload's job "
            "again (header `Idempotent-Replayed: true`; its `deletion_url` is a new one, the earlier one "
            "stops working; none once it was used) instead of a second picture; the same key with "
            "anything else is refused (422). A key names one upload for good."
        ),
        parameters=[
            s.UploadQuerySerializer,
            OpenApiParameter(
                "Idempotency-Key", IDEMPOTENCY_KEY_SCHEMA, OpenApiParameter.HEADER, required=False,
                description="1-255 visible ASCII characters (a UUID): a retry with the same key gets the first upload's job.",
            ),
        ],
        request={
            "multipart/form-data": s.UploadSerializer,
            "image/*": OpenApiTypes.BINARY,
            "application/octet-stream": OpenApiTypes.BINARY,
        },
        responses={
            202: OpenApiResponse(
                s.AcceptedJobSerializer,
                description="Accepted: the job is queued or running (with a `warning` when the queue is down; the job is kept).",
            ),
            201: OpenApiResponse(s.AcceptedJobSerializer, description="Finished within `wait` seconds (done or failed)."),
            **errors(400, 401, 404, 413, 415, 422, 429),
        },
    )
    def post(self, request: Request) -> Response:
        opts, data = read_upload(request)
        user = user_or_none(request)
        try:
            album = selectors.album_to_upload_into(opts.get("album") or "", user)
        except InvalidInput as refused:  # a field of this request
            raise exceptions.ValidationError({"album": [refused.message]}) from refused
        budget_chars = max_chars_for_budget(opts.get("budget"), absolute_urls.token_url_prefix(request))
        submission = uploads.submit_uploads(
            [data],
            owner=user,
            album=album,
            title=opts.get("title", ""),
            max_chars=opts.get("max_chars") or budget_chars,
            model=opts.get("model") or None,
            kind=opts.get("kind", EncodeKind.VAE),
            idempotency_key=request.META.get("HTTP_IDEMPOTENCY_KEY"),  # None: no header
        )
        job = submission.jobs[0]
        deletion_key = submission.deletion_keys.get(job.pk)  # none: a replay after the key was used
        deletion_url = absolute_urls.absolute(request, "delete_upload", deletion_key) if deletion_key else None
        headers = {"Cache-Control": "no-store"}
        if submission.replayed:
            headers["Idempotent-Replayed"] = "true"
        if submission.queue_unavailable:
            # The job is kept and the sweeper sends it when the broker is back: accepted, with a warning.
            body = dict(s.JobSerializer(job, context={"request": request}).data, deletion_url=deletion_url)
            body["warning"] = {"code": "queue_unavailable", "message": QUEUE_UNAVAILABLE_MESSAGE}
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"], **headers})
        job = wait_for_job(job, opts.get("wait", 0) if user is not None else 0)
        body = dict(s.JobSerializer(job, context={"request": request}).data, deletion_url=deletion_url)
        code = status.HTTP_201_CREATED if job.is_finished else status.HTTP_202_ACCEPTED
        return Response(body, status=code, headers={"Location": body["status_url"], **headers})


def read_upload(request: Request) -> tuple[dict[str, Any], bytes]:
    """The upload's options and bytes: multipart form (fields win over the query) or raw body."""
    if isinstance(request.data, bytes) or not request.content_type.startswith(("multipart/", "application/x-www")):
        options = s.UploadQuerySerializer(data=request.query_params.dict())  # plain dict: "x=" is blank, not absent
        options.is_valid(raise_exception=True)
        return options.validated_data, request.data if isinstance(request.data, bytes) else b""
    options = s.UploadSerializer(data={**request.query_params.dict(), **request.data.dict()})
    options.is_valid(raise_exception=True)
    files = request.FILES.getlist("file")
    if not files:
        raise exceptions.ValidationError({"file": ["Send an image as the `file` field or as the body."]})
    if len(files) > 1:  # the last one was taken, the others dropped without a word
        raise exceptions.ValidationError({"file": ["Send one image per request (`file` was given more than once)."]})
    return options.validated_data, files[0].read()


def wait_for_job(job: EncodeJob, seconds: float) -> EncodeJob:
    """Re-read a job until it finishes or ``seconds`` pass, if a waiter slot is free (else at once).

    A waiting request holds a web thread: at most ``EMMM_MAX_WAITERS`` per process wait, the
    others answer 202 at once (issue 8.5). Anonymous clients never wait (the view passes 0).
    """
    if seconds <= 0:
        return job
    with concurrency.slot("upload-waiters", settings.EMMM_MAX_WAITERS, timeout=0) as got:
        deadline = time.monotonic() + seconds
        while got and not job.is_finished and time.monotonic() < deadline:
            time.sleep(WAIT_POLL_SECONDS)
            job = selectors.get_job(job.pk)
    return job


class JobDetailView(ApiView):
    """An encode job's status; the id is the capability (anyone holding it may poll)."""

    permission_classes = [permissions.AllowAny]
    serializer_class = s.JobSerializer

    @extend_schema(operation_id="jobs_retrieve", summary="Poll an upload job", responses={200: s.JobSerializer, **errors(401, 404)})
    def get(self, request: Request, job_id) -> Response:
        return Response(self.get_serializer(selectors.get_job(job_id)).data)
