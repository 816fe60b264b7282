"""URL configuration. Paths under /i/, /image, /s/ are the public contract."""
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView


class FaviconRedirect(RedirectView):
    """/favicon.ico → the icon the pages name (resolved per request: a static manifest may
    not be loaded when this module is imported)."""

    permanent = False  # the file's name changes with its content (collectstatic's manifest)

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("favicon.svg")


urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers and feed readers ask for /favicon.ico whatever the pages say (<link rel="icon">).
    path("favicon.ico", FaviconRedirect.as_view()),
    path("api/", include("imagehost.api.urls")),
    path("", include("imagehost.urls")),
]

handler400 = "imagehost.views.errors.error_400"
handler403 = "imagehost.views.errors.error_403"
handler404 = "imagehost.views.errors.error_404"
handler500 = "imagehost.views.errors.error_500"
