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


def test_what_the_long_fuzz_found_stays_fixed(tmp_path):
    """The 10,000-file run with the shipped weights found these 500s: a MIDI meter of 255/2^255 or notes 2^28 ticks
    long overflowed the upload's record; the shipped analyzer's pooling ran out of frames on clips under ~0.5 s."""
    import numpy as np
    import pytest

    from tunesmith.analyze.analyzer import Analyzer
    from tunesmith.bench.hostile import midi_file
    from tunesmith.errors import InputFileError
    from tunesmith.service.errors import PayloadTooLarge
    from tunesmith.service.uploads import check_score, read_upload

    path = tmp_path / "lying.mid"
    for extra, notes, refused in ((b"\x00\xff\x58\x04\xff\xff\x18\x08", [(60, 240)], InputFileError),
                                  (b"\x00\xff\x58\x04\x00\x00\x18\x08", [(60, 240)], InputFileError),
                                  (b"", [(60, 240), (62, 0x0FFFFFFF)], PayloadTooLarge)):
        path.write_bytes(midi_file(notes, division=1, extra=extra))
        with pytest.raises(refused) as caught:
            check_score(read_upload(path), "lying.mid")
        assert caught.value.field == "file" and "lying.mid" in caught.value.message
    analyzer = Analyzer.load("analyzer")  # the shipped one
    for seconds in (0.06, 0.3):
        clip = (0.3 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * 22050)) / 22050)).astype(np.float32)
        assert analyzer.tag(clip, 22050)["instrument"]
