from django.urls import include, path, re_path

from .views import images, library, similar, uploads

urlpatterns = [
    path("", uploads.upload, name="upload"),
    path("jobs/", uploads.jobs, name="jobs"),
    path("jobs/<uuid:job_id>/", uploads.job, name="job"),
    re_path(r"^i/(?P<token>[^/]+)$", images.image, name="image"),
    path("image", images.image_query, name="image_query"),
    path("s/<str:slug>/", images.short_page, name="short_page"),
    path("s/<str:slug>", images.short_image, name="short_image"),
    path("shorten", images.shorten, name="shorten"),
    path("accounts/signup/", library.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("library/", library.library, name="library"),
    path("p/<int:pk>/", library.picture, name="picture"),
    path("search/", similar.search_page, name="search"),
    path("albums/", library.albums, name="albums"),
    path("albums/public/", library.public_albums, name="public_albums"),
    path("albums/<slug:slug>/", library.album, name="album"),
]
