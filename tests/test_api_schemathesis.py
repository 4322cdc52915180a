"""Property-based fuzzing of the served OpenAPI document with schemathesis.

Every operation gets generated requests (valid and invalid) against a real
uvicorn server: no response may be a 5xx, and every response must match the
documented status codes, content types and schemas. Derandomized so CI is
reproducible; `ZHIKU_FUZZ_EXAMPLES` raises the count for a deeper run
(`make reliability`). The same fuzzing runs against a keyed server with a
key of each scope, and every run records its figures for `make reliability`.
"""

from __future__ import annotations

import os

import pytest
from api_support import DOCS, fake_settings, running_server

from zhiku.api import create_app

schemathesis = pytest.importorskip("schemathesis")
pytestmark = pytest.mark.integration

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.checks import not_a_server_error  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation and generation mode: bounded in `make test`, 50 under `make reliability`.
EXAMPLES = int(os.environ.get("ZHIKU_FUZZ_EXAMPLES", "10"))


def _fuzz(url: str, headers: dict[str, str], examples: int) -> tuple[dict[str, int], list[str]]:
    """Generated requests (valid and invalid) to every operation; returns (sent per operation, failures)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=headers)
    sent: dict[str, int] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):  # type: ignore[no-untyped-def]
                sent[label] = sent.get(label, 0) + 1
                case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=120)

            try:
                check()
            except KeyboardInterrupt:
                raise
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to negate (no parameters)
            except BaseException as exc:  # noqa: BLE001 - collect every operation's failure, then report all
                failures.append(f"{label} [{mode.value}]: {exc}")
    return sent, failures


def _statuses(url: str, headers: dict[str, str]) -> dict[str, float]:
    import httpx

    statuses: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", headers=headers).text.splitlines():
        if line.startswith("zhiku_http_requests_total{"):
            status = line.split('status="')[1].split('"')[0]
            statuses[status] = statuses.get(status, 0) + float(line.rsplit(" ", 1)[1])
    return statuses


def _seed(url: str, headers: dict[str, str]) -> None:
    import httpx

    seeded = httpx.post(f"{url}/documents", json={"documents": DOCS}, headers=headers, timeout=30)
    assert seeded.status_code == 201, seeded.text
    # Warm the file parsers once, so the first fuzzed upload does not pay their import.
    warm = httpx.post(f"{url}/documents", files={"files": ("w.txt", b"warm up")}, headers=headers, timeout=120)
    assert warm.status_code == 201, warm.text


def _record(sent: dict[str, int], statuses: dict[str, float]) -> None:
    from reliability.reliability_support import record

    errors = int(sum(n for code, n in statuses.items() if code.startswith("5")))
    record("Fuzz requests", "sent / 5xx", sent=sum(sent.values()), **{"5xx": errors})


def test_fuzz_every_operation(tmp_path):
    app = create_app(fake_settings(tmp_path, store="edge", server={"request_timeout_s": 120}))
    with running_server(app) as url:
        _seed(url, {})
        sent, failures = _fuzz(url, {}, EXAMPLES)
        statuses = _statuses(url, {})
    total = sum(sent.values())
    _record(sent, statuses)
    print(f"schemathesis: {total} requests over {len(sent)} operations; statuses {sorted(statuses.items())}")
    assert not failures, "\n\n".join(failures)
    assert total >= 20 * EXAMPLES, sent  # generation did not collapse
    assert statuses.get("200", 0) + statuses.get("201", 0) >= 100, statuses  # not only rejections
    assert not any(code.startswith("5") for code in statuses), statuses


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
def test_fuzz_with_a_key_of_each_scope(tmp_path, scope):
    """A keyed server, fuzzed with a key of one scope for the seeded collection: no 5xx, schemas hold."""
    from zhiku.api.security import KeyStore

    keys = KeyStore(tmp_path)
    root, _ = keys.create(["*"], "admin")
    token, _ = keys.create(["default"], scope)
    app = create_app(fake_settings(tmp_path, store="edge", server={"request_timeout_s": 120}))
    with running_server(app) as url:
        _seed(url, {"Authorization": f"Bearer {root}"})
        sent, failures = _fuzz(url, {"Authorization": f"Bearer {token}"}, max(3, EXAMPLES // 5))
        statuses = _statuses(url, {"Authorization": f"Bearer {root}"})
    _record(sent, statuses)
    print(f"schemathesis ({scope} key): {sum(sent.values())} requests; statuses {sorted(statuses.items())}")
    assert not failures, "\n\n".join(failures)
    assert not any(code.startswith("5") for code in statuses), statuses
