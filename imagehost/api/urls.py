"""``/api/…``: the versioned REST API, its OpenAPI schema and docs, and the API-token settings page."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views, views_settings

app_name = "api"

v1 = [
    path("images", views.ImageUploadView.as_view(), name="image-upload"),
    path("jobs/<uuid:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("albums", views.AlbumListView.as_view(), name="album-list"),
    path("albums/<slug:slug>", views.AlbumDetailView.as_view(), name="album-detail"),
    path("albums/<slug:slug>/pictures", views.AlbumPicturesView.as_view(), name="album-pictures"),
    path("pictures", views.PictureListView.as_view(), name="picture-list"),
    path("pictures/<int:pk>", views.PictureDetailView.as_view(), name="picture-detail"),
    path("links", views.LinkListView.as_view(), name="link-list"),
    path("links/<str:slug>", views.LinkDetailView.as_view(), name="link-detail"),
    path("decode", views.DecodeView.as_view(), name="decode"),
    path("inspect", views.InspectView.as_view(), name="inspect"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("tokens/", views_settings.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke", views_settings.revoke_token, name="token-revoke"),
    path("tokens/sharex.sxcu", views_settings.sharex_download, name="sharex"),
    # Anything else under /api/ is a JSON 404, in the API's error shape.
    re_path(r"^", views.NotFoundView.as_view(), name="not-found"),
]
