"""``GET /api/v1/pictures/{id}/similar`` and ``POST /api/v1/search`` (search by example)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from imagehost.services import search
from imagehost.uploadhandlers import BoundedMemoryUploadHandler

from .. import serializers as s
from ..pagination import Pagination
from ..parsers import TextJSONParser
from ..throttling import SearchThrottle
from .base import MAX_DB_ID, ApiView, errors, user_or_none

SCOPE_HELP = "`mine`: your pictures (sign-in required); `public`: pictures in public albums. Default: `mine` when signed in, else `public`."


class SimilarPictureSerializer(s.PictureSerializer):
    score = serializers.FloatField(help_text="Cosine similarity to the query (1.0 = identical vectors).")

    class Meta(s.PictureSerializer.Meta):
        fields = [*s.PictureSerializer.Meta.fields, "score"]
        read_only_fields = fields

    def to_representation(self, instance: search.SimilarPicture) -> dict[str, Any]:
        picture = instance.picture
        picture.score = round(instance.score, 4)  # read by the `score` field
        return super().to_representation(picture)


class SearchAnswerSerializer(serializers.Serializer):
    """The answer of a search by example: all `k` pictures at once (`k` is at most 100)."""

    results = SimilarPictureSerializer(many=True, help_text="The pictures, best first (at most `k`).")


class ScopeSerializer(s.RefusesUnknownFields, serializers.Serializer):
    scope = serializers.ChoiceField(choices=search.SCOPES, required=False, help_text=SCOPE_HELP)
    k = serializers.IntegerField(
        min_value=1, max_value=search.MAX_K, default=search.DEFAULT_K, help_text=f"How many pictures (1-{search.MAX_K})."
    )


class SearchByTokenSerializer(ScopeSerializer):
    """A JSON search body: JSON cannot carry a file."""

    token = s.StrictCharField(help_text="A token, token URL (/i/…) or short link (/s/…).")


class SearchSerializer(SearchByTokenSerializer):
    """A search body of either kind (what the view validates; multipart in the schema)."""

    file = serializers.FileField(required=False, help_text="The query image (multipart). Never stored.")
    token = s.StrictCharField(required=False, help_text="A token, token URL (/i/…) or short link (/s/…).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("file" in attrs) == ("token" in attrs):
            raise serializers.ValidationError("Send either `file` (an image) or `token`.")
        return attrs


class _SimilarView(ApiView):
    serializer_class = SimilarPictureSerializer
    throttle_classes = [SearchThrottle]
    permission_classes = [permissions.AllowAny]


def _scope(request: Request, options: dict[str, Any]) -> str:
    scope = options.get("scope") or search.default_scope(user_or_none(request))
    if scope == "mine" and user_or_none(request) is None:
        raise exceptions.NotAuthenticated("Sign in to search your own pictures (or use scope=public).")
    return scope


class PictureSimilarView(_SimilarView):
    query_params_allowed = frozenset({"scope", "k"})
    pagination_class = Pagination

    @extend_schema(
        operation_id="pictures_similar",
        summary="Pictures similar to one of mine or a public one, best first",
        parameters=[ScopeSerializer],
        responses={200: SimilarPictureSerializer(many=True), **errors(401, 404, 429, 503)},
    )
    def get(self, request: Request, pk: int) -> Response:
        # Only its own options: page and page_size are the paginator's (ApiView.initial refuses the rest).
        own = {k: v for k, v in request.query_params.items() if k in self.query_params_allowed}
        options = ScopeSerializer(data=own)
        options.is_valid(raise_exception=True)
        if pk > MAX_DB_ID:
            raise exceptions.NotFound()
        picture = search.visible_picture(pk, user_or_none(request))
        opts = options.validated_data
        results = search.similar_to_picture(picture, scope=_scope(request, opts), viewer=user_or_none(request), k=opts["k"])
        page = self.paginate_queryset(results)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class SearchView(_SimilarView):
    parser_classes = [MultiPartParser, FormParser, TextJSONParser]

    def initialize_request(self, request, *args, **kwargs) -> Request:
        request.upload_handlers = [BoundedMemoryUploadHandler(request)]  # keep the query image in memory, bounded
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        operation_id="search",
        summary="Search by example: pictures like an image or a token, best first",
        description="Multipart `file` (an image, bounded like uploads, never stored) or JSON `{\"token\": ...}`; "
        "optional `scope` and `k` (a form's empty field counts as absent). All `k` pictures in one answer, "
        "not paginated. " + SCOPE_HELP,
        request={
            "multipart/form-data": SearchSerializer,
            "application/json": SearchByTokenSerializer,
            "application/x-www-form-urlencoded": SearchByTokenSerializer,
        },
        responses={200: SearchAnswerSerializer, **errors(401, 404, 410, 413, 415, 429, 503)},
    )
    def post(self, request: Request) -> Response:
        if hasattr(request.data, "dict"):
            # A form sends its empty inputs as "" (it cannot leave a field out): absent here, as
            # on the site. JSON can leave a field out, so "" there is a value (and refused).
            data = {name: value for name, value in request.data.dict().items() if value != ""}
        else:
            data = request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError("Send a JSON object or a multipart form.")
        if len(request.FILES.getlist("file")) > 1:
            raise exceptions.ValidationError({"file": ["Send one image to search with (`file` was given more than once)."]})
        if "file" in request.FILES:
            data["file"] = request.FILES["file"]
        body = SearchSerializer(data=data)
        body.is_valid(raise_exception=True)
        opts = body.validated_data
        scope = _scope(request, opts)
        if "file" in opts:
            vector = search.embed_query_file(opts["file"].read())
        else:
            vector = search.embed_query_text(opts["token"])
        results = search.search_vector(vector, scope=scope, viewer=user_or_none(request), k=opts["k"])
        return Response(SearchAnswerSerializer({"results": results}, context=self.get_serializer_context()).data)
