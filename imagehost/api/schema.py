"""drf-spectacular extensions and shared schema pieces."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class NoReferrerSessionScheme(SessionScheme):
    """The site session (our SessionAuthentication only changes how CSRF is checked)."""

    target_class = "imagehost.api.authentication.SessionAuthentication"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "imagehost.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "emmm_<random>",
            "description": "An API token created on the settings page (/api/tokens/).",
        }
