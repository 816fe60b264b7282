"""Schemathesis against the live schema: no 5xx, responses match the schema, bad input gets 4xx.

Runs every operation through Django's WSGI app (same database transaction as the test),
authenticated with a real API token, with positive and negative (schema-violating) data.
Bounded: a few examples per operation, derandomised, so the run is short and repeatable.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
from schemathesis import DataGenerationMethod
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from imagehost.api.models import ApiToken
from imagehost.models import Picture

MAX_EXAMPLES = 25
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
)


@pytest.fixture
def live_schema(db):
    """The schema served by the real WSGI app, inside the test's database transaction.

    As Django's test client does, the per-request connection closing is switched off so
    that requests run in the test transaction (PostgreSQL would otherwise close it).
    """
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from emmmsite.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.from_wsgi(
            "/api/schema/?format=json",
            application,
            data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_headers(django_user_model, settings) -> dict[str, str]:
    """A user with an album and a picture, and their API token; throttles out of the way."""
    from imagehost.ratelimits import SCOPES

    for scope in SCOPES.values():
        setattr(settings, scope.rate_setting, "100000/m")
        setattr(settings, scope.anon_api_rate_setting, "100000/m")
    user = django_user_model.objects.create_user("fuzz", password="pw-fuzz-123")
    Picture.objects.create(owner=user, token="E" * 40, model_name="taef2", width=8, height=8, title="p")
    _, raw = ApiToken.issue(user, "schemathesis")
    return {"Authorization": f"Bearer {raw}"}


schema = schemathesis.from_pytest_fixture(
    "live_schema", data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative]
)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, api_headers):
    # A multipart body that is not an object cannot be encoded at all (the client library fails).
    assume(not (case.media_type == "multipart/form-data" and not isinstance(case.body, dict)))
    if case.data_generation_method == DataGenerationMethod.negative:
        # An empty list or a null is sent as nothing at all: the "negative" request would be valid.
        assume(all(v not in ([], [None], None) for v in (case.query or {}).values()))
    case.call_and_validate(headers=api_headers, checks=CHECKS)
