"""Short links: create (anyone), list and delete (their owner)."""

from __future__ import annotations


from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response

from imagehost import selectors
from imagehost.services import links

from .. import serializers as s
from ..pagination import Pagination
from ..throttling import LinkThrottle
from .base import ApiView, errors, user_or_none


class LinkListView(ApiView):
    serializer_class = s.LinkSerializer
    pagination_class = Pagination

    def get_permissions(self) -> list:
        """Anyone may shorten; listing needs sign-in (the schema's security follows this)."""
        return [permissions.AllowAny()] if self.request.method in ("POST", "OPTIONS") else [permissions.IsAuthenticated()]

    def get_throttles(self):
        return [LinkThrottle()] if self.request.method == "POST" else []

    @extend_schema(operation_id="links_list", summary="List my short links", responses={200: s.LinkSerializer(many=True), **errors(401, 404)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.short_links_for_owner(request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        operation_id="links_create",
        summary="Create (or get) a short link",
        description=(
            "From a `token` or one of your `picture`s. The same owner shortening the same token with the same "
            "`expires_at` gets the same link (none: their newest permanent link); another expiry adds a link and "
            "changes none. A link's expiry changes only when `slug` names it: with `expires_at` it becomes that; "
            "without, an expired link becomes permanent again and a live one keeps its expiry. Without `slug` an "
            "expired link is never returned or revived."
        ),
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
            picture = selectors.get_picture_for_owner(opts["picture"], user)
            token, made_for = picture.token, getattr(picture, "job", None)  # the link shows this copy's title
        else:
            token, made_for = opts["token"], None
        link = links.get_or_create_short_link(
            token, user, slug=opts.get("slug"), expires_at=opts.get("expires_at"), made_for=made_for
        )
        return Response(self.get_serializer(link).data, status=status.HTTP_201_CREATED)


class LinkDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.LinkSerializer

    @extend_schema(operation_id="links_destroy", summary="Delete one of my short links", responses={204: None, **errors(401, 404)})
    def delete(self, request: Request, slug: str) -> Response:
        link = selectors.get_short_link(slug)
        links.delete_short_link(link, owner=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
