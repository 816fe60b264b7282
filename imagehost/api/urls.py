"""``/api/…``: the versioned REST API, its OpenAPI schema and docs, and the API-token settings page."""

from django.urls import include, path, re_path
from django.conf import settings
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularSwaggerSplitView

from .views import settings_pages
from .views import library, links, similar, tokens, uploads
from .views.base import NotFoundView, SchemaView

app_name = "api"

_swagger_ui = SpectacularSwaggerSplitView.as_view(url_name="api:schema")  # its script is a file, not inline


@require_safe  # an OPTIONS answer has no template: it was a 500
def swagger_docs(request, *args, **kwargs):
    """``/api/docs/``: Swagger UI; its page has one inline <style>, so styles may be inline here."""
    response = _swagger_ui(request, *args, **kwargs)
    response["Content-Security-Policy"] = settings.EMMM_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    return response


v1 = [
    path("images", uploads.ImageUploadView.as_view(), name="image-upload"),
    path("jobs/<uuid:job_id>", uploads.JobDetailView.as_view(), name="job-detail"),
    path("albums", library.AlbumListView.as_view(), name="album-list"),
    path("albums/<slug:slug>", library.AlbumDetailView.as_view(), name="album-detail"),
    path("albums/<slug:slug>/pictures", library.AlbumPicturesView.as_view(), name="album-pictures"),
    path("pictures", library.PictureListView.as_view(), name="picture-list"),
    path("pictures/<int:pk>", library.PictureDetailView.as_view(), name="picture-detail"),
    path("pictures/<int:pk>/similar", similar.PictureSimilarView.as_view(), name="picture-similar"),
    path("search", similar.SearchView.as_view(), name="search"),
    path("links", links.LinkListView.as_view(), name="link-list"),
    path("links/<str:slug>", links.LinkDetailView.as_view(), name="link-detail"),
    path("decode", tokens.DecodeView.as_view(), name="decode"),
    path("inspect", tokens.InspectView.as_view(), name="inspect"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", swagger_docs, name="docs"),
    path("tokens/", settings_pages.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke", settings_pages.revoke_token, name="token-revoke"),
    path("tokens/sharex.sxcu", settings_pages.sharex_download, name="sharex"),
    # Anything else under /api/ is a JSON 404, in the API's error shape.
    re_path(r"^", NotFoundView.as_view(), name="not-found"),
]
