"""The API keeps its OpenAPI contract: schemathesis (every phase, every check, a fixed seed) against a live server.

A real server on 127.0.0.1 (uvicorn, the tiny models, one worker thread, the rate limit and quota raised out of
reach) and schemathesis's own CLI in a subprocess, as a user would run it: examples, coverage, fuzzing and stateful
phases (the links from each POST's answer to the operations on what it made), all checks, configured in
tests/schemathesis.toml (where the schema cannot say everything, the declared 4xx is named there), with the file
hooks of tests/schemathesis_hooks.py. Bounded: about two minutes; `st run` with a larger max-examples is the long
run (docs/api.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service_fixtures import live_server
from tests.test_service_support import make_key
from tests.tiny import tiny_weights
from tunesmith.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "schemathesis.toml"


def schemathesis_command() -> list[str]:
    pytest.importorskip("schemathesis")
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found is None:
        pytest.skip("the schemathesis CLI (st) is not installed")
    return [found]


def test_schemathesis_finds_no_contract_failure(tmp_path):
    command = schemathesis_command()
    settings = Settings(data_dir=tmp_path / "data", weights_dir=tiny_weights(tmp_path / "weights"), workers=1,
                        poll_seconds=0.1, requests_per_minute=1_000_000, daily_audio_seconds=10**9,
                        max_audio_seconds=10**5, max_decode_seconds=5)
    secret = make_key(settings, "contract")["Authorization"].split()[1]
    env = {**os.environ, "TUNESMITH_API_KEY": secret, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "NO_COLOR": "1", "COLUMNS": "120"}
    with live_server(settings) as server:
        done = subprocess.run([*command, "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json",
                               "--no-color"], capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-8000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", out)
    assert cases and cases[1] == cases[2] and int(cases[1]) > 500, out[-3000:]
    assert re.search(r"Tested:\s+(\d+)", out)[1] == re.search(r"Selected:\s+(\d+)", out)[1], "an operation untested"
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅\s+{phase}", out), f"phase {phase} did not pass:\n{out[-3000:]}"
    links = re.search(r"API Links:\s+(\d+) covered", out)
    assert links and int(links[1]) > 0, "the stateful phase followed no link"
    print(out[out.find("Examples ("):][:400], out[out.find("WARNINGS"):][:1500])  # pytest -rP shows the figures
