"""Schemathesis against the gateway's own OpenAPI schema (the ASGI app, in process): generated
requests, valid (positive) and invalid (negative), must get documented status codes, content
types, headers and bodies — never a 5xx. Also: every route documents its errors with the problem
schema.

(schemathesis' ``from_fixture`` pytest loader does not run on pytest 9, so the operations are
driven with ``APIOperation.as_strategy`` and Hypothesis directly.)"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402
from service_support import AUTH  # noqa: E402

from service.app import create_app  # noqa: E402

EXAMPLES = 30


def _checker(operation, mode: GenerationMode):
    """A Hypothesis test of one operation in one generation mode."""
    # A schema-valid upload is any bytes in the file part and any one target — or none, or
    # two: OpenAPI cannot say "a decodable image" or "exactly one of", so those are refused
    # (415/422) although they match the schema.
    excluded = [positive_data_acceptance] if operation.label == "POST /v1/images" else []

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case) -> None:
        case.call_and_validate(headers=AUTH, excluded_checks=excluded)

    return check


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value
)
def test_api_conforms_to_its_schema(settings, mode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11
    for operation in operations:
        try:
            _checker(operation, mode)()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters)
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_every_operation_documents_its_errors(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "Problem" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path in ("/healthz", "/readyz", "/metrics"):
                continue
            for code in ("422", "500", "503"):
                assert code in responses, (method, path, code)
                assert "application/problem+json" in responses[code]["content"], (
                    method,
                    path,
                    code,
                )
            assert "HTTPValidationError" not in str(responses)
