"""Hostile files through a real `tunesmith serve` (tiny models): a bounded sample of `tunesmith bench fuzz`.

200 files from tunesmith.bench.hostile (truncated, mutated headers, absurd sample rates and lengths, MIDI event
streams that lie, zip bombs in .mxl, deeply nested XML and entity expansion, scores of very many notes, random
ABC and bytes) go to POST /v1/uploads, /v1/analyses and /v1/verifications: no 5xx and no dropped connection,
every refusal a 4xx error body that names its field, no server process replaced, and memory bounded: the API
processes stay near what they hold after a warm-up, each file reader within max_decode_megabytes."""

from __future__ import annotations

from tests.tiny import tiny_weights

DECODE_MEGABYTES = 256


def test_hostile_files_are_refused_by_name_without_5xx_and_within_memory(tmp_path, monkeypatch):
    from tunesmith.bench.fuzz import run

    monkeypatch.setenv("TUNESMITH_WEIGHTS", str(tiny_weights(tmp_path / "weights")))
    figures = run(files=200, seed=1, clients=4, json=True,
                  env={"TUNESMITH_MAX_DECODE_SECONDS": "3", "TUNESMITH_MAX_DECODE_MEGABYTES": str(DECODE_MEGABYTES)})
    assert figures["files"] == 200
    assert figures["server_errors"] == 0, figures["problems"]
    assert figures["problems"] == [], figures["problems"]
    assert figures["unnamed_rejections"] == 0, figures["unnamed"]
    statuses = {int(status) for status in figures["statuses"]}
    assert statuses <= {200, 201, 202, 400, 413}, figures["statuses"]
    assert {400, 413} <= statuses and statuses & {200, 201}  # broken files refused, sound ones taken
    assert set(figures["by_attack"]) >= {"zip_archive", "deep_xml", "many_notes", "midi_events", "wav_header"}
    assert not figures["processes_replaced"] and not figures["worker_replaced"] and figures["worker_alive"]
    memory, baseline = figures["memory_by_role"], figures["memory_after_warm_up"]
    assert memory["api"]["peak_rss_mb"] < baseline["api"]["peak_rss_mb"] + 300, (memory, baseline)
    fork_server = memory["reader fork server"]["peak_rss_mb"]
    assert memory["reader"]["peak_rss_mb"] < fork_server + DECODE_MEGABYTES, memory
