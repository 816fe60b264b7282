"""Decode and inspect a token sent in the request body."""

from __future__ import annotations


from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response

from imagehost.services import rendering, tokens
from imagehost.views.forms import parse_width
from imagehost.views.http import image_etag, parse_format

from .. import serializers as s
from ..throttling import DecodeThrottle
from .base import ApiView, errors

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
        response["ETag"] = image_etag(rendered.token_sha256, fmt, rendering.rendering_width(opts["token"], width))
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
