"""`tunesmith bench service` against a real server on 127.0.0.1, with few clients and requests (bounded)."""

from __future__ import annotations

import pytest

from tunesmith.bench import AVAILABLE
from tunesmith.errors import ParameterError


def test_service_bench_reports_sane_figures(capsys: pytest.CaptureFixture[str]) -> None:
    from tunesmith.bench.service import run

    # the drain returns once the 6 jobs are done; 60 s only bounds it on a loaded machine (in a clean-clone run
    # beside a training, 10 s saw one of them finish)
    figures = run(clients=3, requests=6, seconds=60.0, json=True, api_processes=2)
    assert '"submit"' in capsys.readouterr().out
    assert figures["api_processes"] == 2  # the CPU figures add up both
    for name in ("submit", "status", "status_after_wait"):
        phase = figures[name]
        assert phase["failed"] == 0, phase["first_failure"]
        assert phase["ok"] == 6
        assert 0 < phase["p50_ms"] <= phase["p99_ms"] <= phase["max_ms"]
        assert phase["requests_per_second"] > 0
    e2e = figures["end_to_end"]
    assert e2e["jobs"] == 6
    assert e2e["failed"] == 0 and e2e["succeeded"] >= 2, e2e
    assert e2e["jobs_per_minute"] > 0 and e2e["job_seconds_median"] > 0


def test_service_bench_is_listed_and_refuses_bad_options() -> None:
    from tunesmith.bench.service import run

    assert "service" in AVAILABLE
    with pytest.raises(ParameterError) as error:
        run(clients=0, requests=5, seconds=5.0)
    assert error.value.field == "clients"
    with pytest.raises(ParameterError) as error:
        run(clients=2, requests=5, seconds=5.0, api_processes=0)
    assert error.value.field == "api_processes"
