"""Albums and pictures of a signed-in user."""

from __future__ import annotations


from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response

from imagehost import selectors
from imagehost.models import Album, Picture
from imagehost.services import library

from .. import serializers as s
from ..pagination import Pagination
from ..throttling import SlugThrottle
from .base import MAX_DB_ID, ApiView, errors, user_or_none


class AlbumListView(ApiView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.AlbumSerializer
    pagination_class = Pagination

    @extend_schema(operation_id="albums_list", summary="List my albums", responses={200: s.AlbumSerializer(many=True), **errors(401, 404)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.albums_for_owner(request.user, with_counts=True))
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
        if write and not album.is_owned_by(request.user):
            raise exceptions.PermissionDenied("Only the album's owner can change it.")
        return album


class AlbumDetailView(AlbumAccessMixin, ApiView):
    throttle_classes = [SlugThrottle]
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    serializer_class = s.AlbumSerializer

    @extend_schema(operation_id="albums_retrieve", summary="Get an album", responses={200: s.AlbumSerializer, **errors(401, 404, 429)})
    def get(self, request: Request, slug: str) -> Response:
        return Response(self.get_serializer(self.get_album(request, slug)).data)

    @extend_schema(operation_id="albums_partial_update", summary="Rename an album or change its visibility", request=s.AlbumUpdateSerializer, responses={200: s.AlbumSerializer, **errors(400, 401, 403, 404, 415, 429)})
    def patch(self, request: Request, slug: str) -> Response:
        album = self.get_album(request, slug, write=True)
        body = s.AlbumUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        album = library.update_album(album, **body.validated_data)
        return Response(self.get_serializer(album).data)

    @extend_schema(operation_id="albums_destroy", summary="Delete an album (its pictures stay in the library)", responses={204: None, **errors(401, 403, 404, 429)})
    def delete(self, request: Request, slug: str) -> Response:
        library.delete_album(self.get_album(request, slug, write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlbumPicturesView(AlbumAccessMixin, ApiView):
    throttle_classes = [SlugThrottle]
    permission_classes = [permissions.AllowAny]
    serializer_class = s.AlbumPictureSerializer
    pagination_class = Pagination

    @extend_schema(operation_id="albums_pictures_list", summary="An album's pictures, in order", responses={200: s.AlbumPictureSerializer(many=True), **errors(401, 404, 429)})
    def get(self, request: Request, slug: str) -> Response:
        album = self.get_album(request, slug)
        page = self.paginate_queryset(selectors.album_pictures(album, user_or_none(request)))
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
        page = self.paginate_queryset(selectors.with_link_slugs(pictures).select_related("owner"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class PictureDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.PictureSerializer

    @property
    def query_params_allowed(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({"links"}) if self.request.method == "DELETE" else frozenset()

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

    @extend_schema(
        operation_id="pictures_destroy",
        summary="Delete a picture from my library (and its short links)",
        parameters=[s.PictureDeleteQuerySerializer],
        responses={204: None, **errors(401, 404)},
    )
    def delete(self, request: Request, pk: int) -> Response:
        picture = self.get_picture(request, pk)
        query = s.PictureDeleteQuerySerializer(data=request.query_params.dict())  # plain dict: "links=" is blank, not absent
        query.is_valid(raise_exception=True)
        library.delete_picture(picture, delete_links=query.validated_data["links"] == "delete")
        return Response(status=status.HTTP_204_NO_CONTENT)
