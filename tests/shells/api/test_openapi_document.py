"""The served OpenAPI document is a valid OpenAPI 3.1 document (checked by an independent validator)."""
from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

pytestmark = pytest.mark.django_db


def test_the_served_document_validates_as_openapi_3_1(client):
    document = client.get("/api/v1/openapi.json", HTTP_HOST="localhost").json()
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_the_validator_refuses_a_broken_document(client):
    document = client.get("/api/v1/openapi.json", HTTP_HOST="localhost").json()
    del document["info"]
    with pytest.raises(OpenAPIValidationError):
        validate(document)
