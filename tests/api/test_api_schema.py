"""The OpenAPI description is valid, and requests generated from it (schemathesis) against the live test server
never meet a server error and always get an answer the description allows."""

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate

from tests.helpers import local, make_slot, patient_books

OPENAPI_URL = "/api/v1/openapi.json"
# Bounded: a few examples per operation and mode keep the run well under two minutes on two shared cores.
EXAMPLES_PER_OPERATION = 25


def test_the_openapi_description_validates(client):
    response = client.get(OPENAPI_URL)
    assert response.status_code == 200
    description = response.json()
    validate(description)
    assert description["openapi"].startswith("3.")
    assert {"/api/v1/availability", "/api/v1/appointments", "/api/v1/appointments/{appointment_id}/cancel"} <= set(
        description["paths"]
    )
    # Errors are described as sent: problem details.
    cancel = description["paths"]["/api/v1/appointments/{appointment_id}/cancel"]["post"]
    assert set(cancel["responses"]["409"]["content"]) == {"application/problem+json"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(240)
def test_generated_requests_meet_no_server_error_and_every_answer_fits_the_description(
    live_server, dr_patel, dr_okafor, make_key, settings
):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    # The rate limit is tested on its own; here it would only turn most requests into 429s.
    settings.API_KEY_REQUESTS_PER_WINDOW = 100_000
    for hour in (9, 10, 11):
        make_slot(dr_patel, local(3, hour))
        make_slot(dr_okafor, local(4, hour))
    for hour in (12, 13):
        patient_books(make_slot(dr_patel, local(3, hour)))
    _, raw = make_key("availability:read", "appointments:read", "appointments:write")
    headers = {"Authorization": f"Bearer {raw}"}
    schema = schemathesis.openapi.from_url(live_server.url + OPENAPI_URL)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    session = requests.Session()
    statuses = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                response = case.call_and_validate(
                    base_url=live_server.url, session=session, headers=headers, checks=checks
                )
                statuses.append(response.status_code)

            run()
    session.close()
    # It reached the endpoints' work, not only their refusals.
    assert len(statuses) > 100 and {200, 404, 422} <= set(statuses), sorted(set(statuses))
