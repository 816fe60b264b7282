from django.urls import include, path, re_path

from .ratelimits import rate_limited
from .views import accounts, deletion, health, images, library, links, sharing, similar, uploads

urlpatterns = [
    path("", uploads.upload, name="upload"),
    path("healthz", health.healthz, name="healthz"),
    path("jobs/", uploads.jobs, name="jobs"),
    path("jobs/<uuid:job_id>/", uploads.job, name="job"),
    re_path(r"^i/(?P<token>[^/]+)$", images.image, name="image"),
    path("image", images.image_query, name="image_query"),
    re_path(r"^t/(?P<identity>[^/]+)$", images.image_by_identity, name="image_by_identity"),
    path("s/<str:slug>/qr.svg", sharing.short_qr, name="short_qr"),
    path("s/<str:slug>/", images.short_page, name="short_page"),
    path("s/<str:slug>", images.short_image, name="short_image"),
    path("shorten", images.shorten, name="shorten"),
    path("links/", links.my_links, name="my_links"),
    path("links/<str:slug>/", links.link_action, name="link_action"),
    path("delete/<str:key>/", deletion.delete_upload, name="delete_upload"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/settings/", accounts.account_settings, name="account_settings"),
    path("accounts/delete/", accounts.delete_account, name="delete_account"),
    path("accounts/email/confirm/<str:signed>/", accounts.confirm_email, name="confirm_email"),
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),  # its limit: ratelimits.LoginRateLimitedBackend
    path(
        "accounts/password_reset/",
        rate_limited("resets", methods=("POST",))(accounts.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path("accounts/password_reset/done/", accounts.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(  # it checks the old password itself, not through LoginRateLimitedBackend: the same scope here
        "accounts/password_change/",
        rate_limited("logins", methods=("POST",))(accounts.PasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/", accounts.PasswordResetConfirmView.as_view(), name="password_reset_confirm"
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("library/", library.library, name="library"),
    path("p/<int:pk>/", library.picture, name="picture"),
    path("search/", similar.search_page, name="search"),
    path("albums/", library.albums, name="albums"),
    path("albums/public/", library.public_albums, name="public_albums"),
    path("albums/<slug:slug>/", library.album, name="album"),
]
