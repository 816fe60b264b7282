from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from . import views

urlpatterns = [
    path("", views.upload, name="upload"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<uuid:job_id>/", views.job, name="job"),
    path("jobs/<uuid:job_id>.json", views.job_json, name="job_json"),
    re_path(r"^i/(?P<token>[^/]+)$", views.image, name="image"),
    path("image", views.image_query, name="image_query"),
    path("s/<str:slug>/", views.short_page, name="short_page"),
    path("s/<str:slug>", views.short_image, name="short_image"),
    path("shorten", views.shorten, name="shorten"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("library/", views.library, name="library"),
    path("p/<int:pk>/", views.picture, name="picture"),
    path("albums/", views.albums, name="albums"),
    path("albums/public/", views.public_albums, name="public_albums"),
    path("albums/<slug:slug>/", views.album, name="album"),
]
