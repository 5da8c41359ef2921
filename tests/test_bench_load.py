"""`tunesmith bench load` against a real server on 127.0.0.1 (tiny models), a few hundred requests (bounded)."""

from __future__ import annotations

import pytest

from tests.tiny import tiny_weights
from tunesmith.bench import AVAILABLE
from tunesmith.errors import ParameterError


def test_mixed_load_gets_only_expected_answers(tmp_path, monkeypatch, capsys):
    from tunesmith.bench.load import MIX, run

    monkeypatch.setenv("TUNESMITH_WEIGHTS", str(tiny_weights(tmp_path / "weights")))
    figures = run(requests=300, clients=16, seed=1, json=True)
    assert '"routes"' in capsys.readouterr().out
    assert figures["errors"] == 0, {name: r["first_error"] for name, r in figures["routes"].items()}
    assert set(figures["routes"]) == {name for name, _ in MIX}
    assert sum(r["requests"] for r in figures["routes"].values()) == 300
    for name, route in figures["routes"].items():
        assert route["ok"] > 0 and 0 < route["p50_ms"] <= route["p99_ms"] <= route["max_ms"], (name, route)
    assert figures["worker_alive"]


def test_load_bench_is_listed_and_refuses_bad_options():
    from tunesmith.bench.load import run

    assert {"load", "fuzz"} <= set(AVAILABLE)
    with pytest.raises(ParameterError) as error:
        run(requests=0)
    assert error.value.field == "requests"
    with pytest.raises(ParameterError) as error:
        run(requests=10, clients=0)
    assert error.value.field == "clients"
