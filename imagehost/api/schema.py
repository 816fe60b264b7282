"""drf-spectacular extensions and shared schema pieces."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from .serializers import RefusesUnknownFields


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's, saying what the API enforces: a request body whose serializer refuses
    unknown fields (``RefusesUnknownFields``: a 400) takes no additional properties."""

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, RefusesUnknownFields):
            schema["additionalProperties"] = False
        return schema


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


#: Methods a session client must send with its CSRF token.
UNSAFE_METHODS = {"post", "put", "patch", "delete"}


def document_shared_refusals(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: answers every operation can give, added where the
    operation does not list them already (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``).

    - 406 to each operation whose answers are JSON (or empty): an ``Accept`` header that allows
      no JSON (decode, which answers an image whatever ``Accept`` says, has no 406);
    - 403 to each unsafe operation a session may call: the session's request without its CSRF token;
    - 503 to every operation: the database or the cache is down (with ``Retry-After``);
    - 411 to each operation with a request body: a chunked body (no ``Content-Length``).
    """
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.get("responses")
            if not isinstance(responses, dict):
                continue
            successes = [r.get("content", {}) for code, r in responses.items() if code.startswith("2")]
            if all(not content or "application/json" in content for content in successes):
                responses.setdefault("406", {"content": error, "description": "The Accept header allows no JSON."})
            if method in UNSAFE_METHODS and any("cookieAuth" in s for s in operation.get("security", [])):
                responses.setdefault("403", {"content": error, "description": "A session request without its CSRF token."})
            responses.setdefault("503", {"content": error, "description": "A backend is unavailable; retry later (Retry-After)."})
            if "requestBody" in operation:
                responses.setdefault("411", {"content": error, "description": "A chunked body: send Content-Length."})
            operation["responses"] = dict(sorted(responses.items()))
    return result
