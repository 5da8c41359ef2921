"""`tunesmith bench service --workers 1,2`: real servers and worker processes on tiny models (no timing asserted)."""

from __future__ import annotations

import pytest

from tests.tiny import tiny_weights
from tunesmith.errors import ParameterError


def test_scaling_bench_runs_every_job_and_reports_sane_figures(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from tunesmith.bench.service_scaling import run

    weights = tiny_weights(tmp_path / "weights")
    figures = run(counts="1,2", jobs=4, seconds=120.0, env_extra={"TUNESMITH_WEIGHTS_DIR": str(weights)})
    assert "what scales" in capsys.readouterr().out
    assert [row["workers"] for row in figures["rows"]] == [1, 2]
    assert figures["records"] in ("postgresql", "sqlite") and figures["queue"] in ("redis", "sqlite")
    for row in figures["rows"]:
        assert row["succeeded"] == 4 and row["failed"] == 0 and row["unfinished"] == 0, row
        assert row["jobs_per_minute"] > 0
        assert row["worker_cpu_seconds_per_job"] > 0 and row["api_cpu_seconds_per_job"] > 0
        assert 0 <= row["queue_wait_p50"] <= row["queue_wait_p95"] <= row["latency_p95"]
        assert 0 < row["latency_p50"] <= row["latency_p95"]
    assert figures["scaling"]["speedup"]["1"] == 1.0
    assert figures["scaling"]["jobs_per_minute_per_core"] > 0


@pytest.mark.parametrize("counts", ["0", "1,x", "", "1,40"])
def test_scaling_bench_refuses_bad_worker_counts(counts: str) -> None:
    from tunesmith.bench.service_scaling import parse_counts

    with pytest.raises(ParameterError) as error:
        parse_counts(counts)
    assert error.value.field == "workers"
