"""URL configuration. Paths under /i/, /image, /s/ are the public contract."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("imagehost.api.urls")),
    path("", include("imagehost.urls")),
]

handler400 = "imagehost.views.errors.error_400"
handler403 = "imagehost.views.errors.error_403"
handler404 = "imagehost.views.errors.error_404"
handler500 = "imagehost.views.errors.error_500"
