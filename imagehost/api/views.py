"""REST API views: parse, call one service or selector, serialise. No domain rules here."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from imagehost import selectors
from imagehost.services import library, links, rendering, tokens, uploads
from imagehost.services.errors import QUEUE_UNAVAILABLE_MESSAGE
from imagehost.views.forms import parse_width
from imagehost.views.http import image_etag, parse_format
from imagehost.models import Album, EncodeJob, Picture

from . import serializers as s
from .pagination import Pagination
from .parsers import BoundedMemoryUploadHandler, OctetStreamParser, RawImageParser
from .throttling import DecodeThrottle, LinkThrottle, UploadThrottle

WAIT_POLL_SECONDS = 0.2
MAX_DB_ID = 2**63 - 1


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Documented error answers (always 400 and 401), all in the one error shape."""
    text = {
        400: "Invalid input.",
        401: "Authentication required, or the credentials are invalid.",
        403: "Not allowed (e.g. changing someone else's album).",
        404: "Not found (also: another user's private resource).",
        409: "Conflict (e.g. the custom slug is taken).",
        410: "The image was taken down.",
        413: "Too large (file, pixel count or token length).",
        415: "Unsupported media type or not an image.",
        429: "Too many requests; see the Retry-After header.",
        503: "A backend is unavailable; retry later.",
    }
    # Any request may carry bad input (e.g. an unknown query parameter) or bad credentials.
    return {c: OpenApiResponse(s.ErrorSerializer, description=text[c]) for c in sorted({400, 401, *codes})}


def user_or_none(request: Request) -> Any:
    return request.user if request.user and request.user.is_authenticated else None


class ApiView(GenericAPIView):
    """Base view: unknown query parameters are refused (400) rather than silently ignored."""

    query_params_allowed: frozenset[str] = frozenset()
    pagination_class = None  # list views set Pagination (which adds `page`, `page_size`)

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        allowed = self.query_params_allowed
        if self.pagination_class is not None:
            pager = self.pagination_class
            allowed = allowed | {pager.page_query_param, pager.page_size_query_param}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise exceptions.ValidationError({name or "(empty)": ["Unknown query parameter."] for name in unknown})


class NotFoundView(GenericAPIView):
    """Any unknown path under /api/: 404 in the API's error shape (not the site's HTML page)."""

    permission_classes = [permissions.AllowAny]
    schema = None

    def http_method_not_allowed(self, request: Request, *args, **kwargs):
        raise exceptions.NotFound()

    def get(self, request: Request, *args, **kwargs):
        raise exceptions.NotFound()


# --- uploads and jobs ------------------------------------------------------------------------
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
            "With `wait=N` the request waits up to N seconds and answers 201 if the job finished."
        ),
        parameters=[s.UploadQuerySerializer],
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
            201: OpenApiResponse(s.JobSerializer, description="Finished within `wait` seconds (done or failed)."),
            **errors(400, 401, 404, 413, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        opts, data = read_upload(request)
        user = user_or_none(request)
        album = None
        if opts.get("album"):
            if user is None:
                raise exceptions.ValidationError({"album": ["Sign in to upload into an album."]})
            album = selectors.get_album_for_owner(opts["album"], user)
        submission = uploads.submit_uploads(
            [data],
            owner=user,
            album=album,
            title=opts.get("title", ""),
            max_chars=opts.get("max_chars"),
            model=opts.get("model") or None,
        )
        job = submission.jobs[0]
        if submission.queue_unavailable:
            # The job is kept and the sweeper sends it when the broker is back: accepted, with a warning.
            body = dict(s.JobSerializer(job, context={"request": request}).data)
            body["warning"] = {"code": "queue_unavailable", "message": QUEUE_UNAVAILABLE_MESSAGE}
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})
        job = wait_for_job(job, opts.get("wait", 0))
        body = s.JobSerializer(job, context={"request": request}).data
        code = status.HTTP_201_CREATED if job.is_finished else status.HTTP_202_ACCEPTED
        return Response(body, status=code, headers={"Location": body["status_url"]})


def read_upload(request: Request) -> tuple[dict[str, Any], bytes]:
    """The upload's options and bytes: multipart form (fields win over the query) or raw body."""
    if isinstance(request.data, bytes) or not request.content_type.startswith(("multipart/", "application/x-www")):
        options = s.UploadQuerySerializer(data=request.query_params.dict())  # plain dict: "x=" is blank, not absent
        options.is_valid(raise_exception=True)
        return options.validated_data, request.data if isinstance(request.data, bytes) else b""
    options = s.UploadSerializer(data={**request.query_params.dict(), **request.data.dict()})
    options.is_valid(raise_exception=True)
    upload = request.FILES.get("file")
    if upload is None:
        raise exceptions.ValidationError({"file": ["Send an image as the `file` field or as the body."]})
    return options.validated_data, upload.read()


def wait_for_job(job: EncodeJob, seconds: float) -> EncodeJob:
    """Re-read a job until it finishes or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not job.is_finished and time.monotonic() < deadline:
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


# --- albums ---------------------------------------------------------------------------------
class AlbumListView(ApiView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.AlbumSerializer
    pagination_class = Pagination

    @extend_schema(operation_id="albums_list", summary="List my albums", responses={200: s.AlbumSerializer(many=True), **errors(401, 404)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.albums_for_owner(request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(operation_id="albums_create", summary="Create an album", request=s.AlbumSerializer, responses={201: s.AlbumSerializer, **errors(400, 401, 415)})
    def post(self, request: Request) -> Response:
        body = s.AlbumSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        album = library.create_album(request.user, **body.validated_data)
        return Response(self.get_serializer(album).data, status=status.HTTP_201_CREATED)


class AlbumAccessMixin:
    """Albums another user may see (unlisted, public) are readable; only the owner may change them."""

    def get_album(self, request: Request, slug: str, *, write: bool = False) -> Album:
        album = selectors.get_album_for_viewer(slug, user_or_none(request))
        if write and album.owner_id != request.user.pk:
            raise exceptions.PermissionDenied("Only the album's owner can change it.")
        return album


class AlbumDetailView(AlbumAccessMixin, ApiView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    serializer_class = s.AlbumSerializer

    @extend_schema(operation_id="albums_retrieve", summary="Get an album", responses={200: s.AlbumSerializer, **errors(401, 404)})
    def get(self, request: Request, slug: str) -> Response:
        return Response(self.get_serializer(self.get_album(request, slug)).data)

    @extend_schema(operation_id="albums_partial_update", summary="Rename an album or change its visibility", request=s.AlbumUpdateSerializer, responses={200: s.AlbumSerializer, **errors(400, 401, 403, 404, 415)})
    def patch(self, request: Request, slug: str) -> Response:
        album = self.get_album(request, slug, write=True)
        body = s.AlbumUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        album = library.update_album(album, **body.validated_data)
        return Response(self.get_serializer(album).data)

    @extend_schema(operation_id="albums_destroy", summary="Delete an album (its pictures stay in the library)", responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request, slug: str) -> Response:
        library.delete_album(self.get_album(request, slug, write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlbumPicturesView(AlbumAccessMixin, ApiView):
    permission_classes = [permissions.AllowAny]
    serializer_class = s.AlbumPictureSerializer
    pagination_class = Pagination

    @extend_schema(operation_id="albums_pictures_list", summary="An album's pictures, in order", responses={200: s.AlbumPictureSerializer(many=True), **errors(401, 404)})
    def get(self, request: Request, slug: str) -> Response:
        album = self.get_album(request, slug)
        page = self.paginate_queryset(selectors.album_pictures(album))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# --- pictures ---------------------------------------------------------------------------------
class PictureListView(ApiView):
    permission_classes = [permissions.IsAuthenticated]
    query_params_allowed = frozenset({"album"})
    serializer_class = s.PictureSerializer
    pagination_class = Pagination

    @extend_schema(
        operation_id="pictures_list",
        summary="List my pictures",
        parameters=[OpenApiParameter("album", str, description="Only pictures in this album (one of yours).")],
        responses={200: s.PictureSerializer(many=True), **errors(401, 404)},
    )
    def get(self, request: Request) -> Response:
        pictures = selectors.pictures_for_owner(request.user)
        if "album" in request.query_params:
            pictures = pictures.filter(album=selectors.get_album_for_owner(request.query_params["album"], request.user))
        page = self.paginate_queryset(pictures)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class PictureDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.PictureSerializer

    def get_picture(self, request: Request, pk: int) -> Picture:
        if pk > MAX_DB_ID:  # would overflow the database's integer
            raise exceptions.NotFound()
        return selectors.get_picture_for_owner(pk, request.user)

    @extend_schema(operation_id="pictures_retrieve", summary="Get one of my pictures", responses={200: s.PictureSerializer, **errors(401, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(self.get_picture(request, pk)).data)

    @extend_schema(operation_id="pictures_partial_update", summary="Retitle a picture or move it to an album", request=s.PictureUpdateSerializer, responses={200: s.PictureSerializer, **errors(400, 401, 404, 415)})
    def patch(self, request: Request, pk: int) -> Response:
        picture = self.get_picture(request, pk)
        body = s.PictureUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = body.validated_data
        if "album" in changes:
            album = selectors.get_album_for_owner(changes["album"], request.user) if changes["album"] else None
            picture = library.move_picture_to_album(picture, album)
        if "title" in changes:
            picture = library.update_picture(picture, title=changes["title"])
        return Response(self.get_serializer(picture).data)

    @extend_schema(operation_id="pictures_destroy", summary="Delete a picture from my library", responses={204: None, **errors(401, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        library.delete_picture(self.get_picture(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- short links -------------------------------------------------------------------------------
class LinkListView(ApiView):
    permission_classes = [permissions.AllowAny]  # anyone may shorten; listing needs sign-in (below)
    serializer_class = s.LinkSerializer
    pagination_class = Pagination

    def get_throttles(self):
        return [LinkThrottle()] if self.request.method == "POST" else []

    @extend_schema(operation_id="links_list", summary="List my short links", responses={200: s.LinkSerializer(many=True), **errors(401, 404)})
    def get(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        page = self.paginate_queryset(selectors.short_links_for_owner(request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        operation_id="links_create",
        summary="Create (or get) a short link",
        description="From a `token` or one of your `picture`s. The same owner shortening the same token gets the same link.",
        request=s.LinkCreateSerializer,
        responses={201: s.LinkSerializer, **errors(400, 401, 404, 409, 410, 413, 415, 429, 503)},
    )
    def post(self, request: Request) -> Response:
        body = s.LinkCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        opts = body.validated_data
        user = user_or_none(request)
        if "picture" in opts:
            if user is None:
                raise exceptions.NotAuthenticated("Sign in to shorten one of your pictures.")
            token = selectors.get_picture_for_owner(opts["picture"], user).token
        else:
            token = opts["token"]
        link = links.get_or_create_short_link(token, user, slug=opts.get("slug"), expires_at=opts.get("expires_at"))
        return Response(self.get_serializer(link).data, status=status.HTTP_201_CREATED)


class LinkDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.LinkSerializer

    @extend_schema(operation_id="links_destroy", summary="Delete one of my short links", responses={204: None, **errors(401, 404)})
    def delete(self, request: Request, slug: str) -> Response:
        link = selectors.get_short_link(slug)
        links.delete_short_link(link, owner=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- decode and inspect ------------------------------------------------------------------------
IMAGE_RESPONSE = OpenApiResponse(
    OpenApiTypes.BINARY, description="The decoded image in the requested format."
)


class DecodeView(ApiView):
    """Decode a token sent in the body (for tokens too long for a URL)."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [DecodeThrottle]
    serializer_class = s.DecodeSerializer

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # Image clients send Accept: image/*; errors are still answered as JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="decode",
        summary="Decode a token to an image",
        request=s.DecodeSerializer,
        responses={
            (200, "image/webp"): IMAGE_RESPONSE,
            (200, "image/png"): IMAGE_RESPONSE,
            (200, "image/jpeg"): IMAGE_RESPONSE,
            (200, "image/avif"): IMAGE_RESPONSE,
            **errors(400, 401, 410, 413, 415, 429, 503),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        opts = body.validated_data
        fmt = parse_format(opts["format"])
        width = parse_width(str(opts["width"])) if "width" in opts else None
        rendered = rendering.render_token_image(opts["token"], fmt, width)
        response = HttpResponse(rendered.content, content_type=rendered.content_type)
        response["ETag"] = image_etag(rendered.token_sha256, fmt, width)
        response["X-Image-Width"] = str(rendered.width)
        response["X-Image-Height"] = str(rendered.height)
        return response


class InspectView(ApiView):
    """A token's header fields, read without running the model."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [DecodeThrottle]
    serializer_class = s.TokenSerializer

    @extend_schema(
        operation_id="inspect",
        summary="Read a token's header",
        request=s.TokenSerializer,
        responses={200: s.TokenInfoSerializer, **errors(400, 401, 410, 413, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        info = tokens.inspect_token(body.validated_data["token"])
        return Response(s.TokenInfoSerializer(info).data)
