"""The `tunesmith` command as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.fabricate import make_messy_folder, make_mtt_tree, make_musdb_tree
from tunesmith.data.dataset import Dataset


def tunesmith(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


@pytest.mark.parametrize("argv", [[], ["data"], ["data", "build"], ["bench"], ["demo"]])
def test_help_everywhere(argv):
    result = tunesmith(*argv, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


@pytest.mark.parametrize("kind", ["notes", "chorales", "folk"])
def test_data_build_bundled_kinds(tmp_path, kind):
    result = tunesmith("data", "build", kind, "--out", str(tmp_path / kind), "--limit", "4", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["items"] >= 2 and summary["kind"] == kind
    assert len(Dataset(tmp_path / kind)) == summary["items"]


def test_data_build_folder_reports_bad_files(tmp_path):
    make_messy_folder(tmp_path / "src")
    result = tunesmith("data", "build", "folder", str(tmp_path / "src"), "--out", str(tmp_path / "ds"),
                       "--limit", "50")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line.startswith("  skipped ")]) >= 3


def test_data_build_musdb(tmp_path):
    make_musdb_tree(tmp_path / "musdb")
    result = tunesmith("data", "build", "musdb", str(tmp_path / "musdb"), "--out", str(tmp_path / "ds"),
                       "--limit", "20", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["items"] > 0


def test_data_build_mtt(tmp_path):
    make_mtt_tree(tmp_path / "mtt")
    result = tunesmith("data", "build", "mtt", str(tmp_path / "mtt"), "--out", str(tmp_path / "ds"),
                       "--limit", "20", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["items"] > 0


def test_bad_usage_and_input_exit_2_with_one_line(tmp_path):
    assert_one_line_error(tunesmith("data", "build", "chorales"), "--out")
    assert_one_line_error(tunesmith("data", "build", "nope", "--out", "x"), "invalid choice")
    assert_one_line_error(tunesmith("data", "build", "mtt", str(tmp_path / "missing"), "--out", "x"),
                          "not a directory")
    assert_one_line_error(tunesmith("data", "build", "chorales", "--out", "x", "--limit", "-1"), "--limit")
    assert_one_line_error(tunesmith("bench", "render"), "not available")
    # an error raised past the parser still names its option
    assert_one_line_error(tunesmith("generate", "song", "--style", "zzz", "-o", str(tmp_path / "x.wav")),
                          "error: --style: unknown style 'zzz'")
    assert not (tmp_path / "x.wav").exists()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.txt").write_text("mine")
    assert_one_line_error(tunesmith("data", "build", "chorales", "--out", str(tmp_path / "foreign")),
                          "not a Tunesmith dataset")
    assert (tmp_path / "foreign" / "thesis.txt").read_text() == "mine"


def test_demo_renders_a_chorale(tmp_path):
    result = tunesmith("demo", "--out", str(tmp_path), "--sr", "22050")
    assert result.returncode == 0, result.stderr
    info = sf.info(str(tmp_path / "demo.wav"))
    assert info.samplerate == 22050 and info.duration > 10
    assert (tmp_path / "demo.mid").stat().st_size > 100
