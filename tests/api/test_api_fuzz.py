"""Property-based fuzzing of every documented route (schemathesis, from /openapi.json over
real HTTP): whatever a client sends, the API never answers 500.

The local sync route is left out: its input is a server folder, and a fuzzer choosing
"/" would index the machine. It has its own tests in test_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from copilot.api.app import create_app
from copilot.config import Settings
from tests.fakes.api_server import serving

ANNA = {"Authorization": "Bearer dev:anna"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(home=home, auth="dev", rate_limit_per_minute=1_000_000))
    with serving(app) as url:
        yield url


def test_no_request_makes_the_api_fail(live: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [
        op
        for op in operations
        if not (op.method.upper() == "POST" and op.path.startswith("/v1/sync/"))
    ]
    assert len(fuzzed) >= 20

    for operation in fuzzed:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call(base_url=live, headers=ANNA, timeout=30)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} → {response.status_code}: "
                f"{response.text[:300]}"
            )
            if response.status_code >= 400:
                content_type = response.headers.get("content-type") or [""]
                assert content_type[0].startswith("application/problem+json"), case.formatted_path

        no_server_error()
