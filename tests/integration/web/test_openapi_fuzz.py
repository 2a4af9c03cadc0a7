"""schemathesis against /openapi.json: no generated input makes the API answer 5xx.

Every operation of the documented API is called with inputs generated from its schema, with an
admin token (so requests reach the code behind the authentication), a bounded number of
examples each (the whole run stays well under a minute per database).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES = 40  # per operation: about 400 calls in all


def test_no_generated_input_gives_a_server_error(web) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", web.client.app)
    headers = web.auth("admin")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r}: "
                                f"{response.status_code} {response.text[:300]}")

        call()
    assert not failures, "\n".join(failures[:10])
