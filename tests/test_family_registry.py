"""Adding a family is one registration: a toy drum-pattern family (a tiny model built here, saved as a real
checkpoint) registered in this test and nowhere else, driven through the CLI, the API and the studio's form.

And the one pipeline under both: the same request and seed give the same audio and MIDI content locally and on
a server (the signed content hashes of the files, which leave out only the embedded manifest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from tests.service_fixtures import live_server
from tests.test_service_studio import browser, open_studio, page, secret_of  # noqa: F401 (fixtures)
from tests.test_service_support import make_key, wait_until_finished
from tests.tiny import tiny_weights
from tunesmith import families
from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint, save_checkpoint
from tunesmith.families import Family, Work
from tunesmith.symbolic.score import Note, Part, Score

STEPS = 16  # sixteenth notes of a 4/4 bar
DRUMS = (36, 38, 42)  # GM kick, snare, closed hat


class ToyDrums(torch.nn.Module):
    """A tiny drum-pattern model: one logit per (instrument, step) of a bar."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(len(DRUMS), STEPS))

    @torch.no_grad()
    def pattern(self, bars: int, density: float, seed: int) -> torch.Tensor:  # (bars, drums, steps) of 0/1
        generator = torch.Generator().manual_seed(seed)
        probs = torch.sigmoid(self.logits + torch.logit(torch.tensor(density).clamp(0.01, 0.99)))
        return torch.bernoulli(probs.expand(bars, -1, -1), generator=generator)


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bars: int | None = Field(None, ge=1, le=8, description="bars of drums")
    density: float | None = Field(None, ge=0.0, le=1.0, description="how busy the pattern is",
                                  json_schema_extra={"default": 0.5})


def load_toy(card_path: Any) -> ToyDrums:
    directory, name = resolve_checkpoint(card_path)
    assert load_card(directory, name)["family"] == "toy-drums"
    return load_weights(directory, name, ToyDrums())


def run_toy(model: ToyDrums, params: dict[str, Any], _source: Score | None) -> Work:
    hits = model.pattern(params["bars"], params["density"], int(params["seed"]))
    notes = [Note(DRUMS[d], (bar * STEPS + step) / 4, 0.25, 100) for bar, d, step in hits.nonzero().tolist()]
    score = Score(parts=[Part("drums", sorted(notes, key=lambda n: n.start), program=0, is_drum=True)], tempo=120.0)
    return Work(score=score, audio=None, sr=0, result={"bars": params["bars"], "hits": len(notes)},
                signed={k: v for k, v in params.items() if k != "model"}, title="toy drums")


TOY = Family(name="toy", card_family="toy-drums", kind="composer", summary="toy drum patterns", load=load_toy,
             params=ToyParams, run=run_toy,
             resolve=lambda r: {"bars": r.explicit.get("bars", 2), "density": r.explicit.get("density", 0.5),
                                "seed": r.seed},
             seconds=lambda params, _upload, _card: params["bars"] * 2.0 + 1.0,
             summary_line=lambda result: f"{result['hits']} hits in {result['bars']} bars")


@pytest.fixture(scope="module")
def toy_weights(tmp_path_factory):
    """A weights directory holding the toy model (a real safetensors checkpoint and card) and nothing else."""
    weights = tmp_path_factory.mktemp("toy-weights")
    model = ToyDrums()
    with torch.no_grad():
        model.logits.copy_(torch.tensor([[2.0, -3, -3, -3] * 4, [-3, -3, -3, -3, 2, -3, -3, -3] * 2, [1.0] * STEPS]))
    save_checkpoint(weights, "toy", model, {"family": "toy-drums", "id": "toy", "version": "0.1.0",
                                             "description": "toy drum patterns", "parameters": 48})
    families.register(TOY)
    yield weights
    families.unregister("toy")


def test_the_toy_family_runs_from_the_cli(toy_weights, tmp_path, capsys, monkeypatch):
    from tunesmith.cli import main
    from tunesmith.symbolic.io import read_score

    monkeypatch.setenv("TUNESMITH_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "toy.mid"
    assert main(["generate", "toy", "--checkpoint", str(toy_weights / "toy.json"), "--bars", "2",
                 "--param", "density=0.4", "--seed", "3", "--json", "-o", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    drums = read_score(out).parts[0]
    assert drums.is_drum and len(drums.notes) == report["hits"] > 0 and {n.pitch for n in drums.notes} <= set(DRUMS)
    assert report["params"]["density"] == 0.4 and report["provenance"]["content_sha256"]
    assert main(["generate", "toy", "--checkpoint", str(toy_weights / "toy.json"), "--pitch", "60",
                 "-o", str(out)]) == 2  # an option the family does not take
    assert "does not take --pitch" in capsys.readouterr().err


def test_the_toy_family_is_served_and_shown_in_the_studio(toy_weights, tmp_path, page):  # noqa: F811
    import httpx2 as httpx

    from tunesmith.config import Settings

    settings = Settings(data_dir=tmp_path / "data", weights_dir=toy_weights, workers=1, poll_seconds=0.1,
                        requests_per_minute=10_000)
    headers = make_key(settings, "toy")
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        cards = {m["id"]: m for m in http.get("/v1/models").json()["models"]}
        assert set(cards) == {"toy"} and cards["toy"]["params"]["density"]["maximum"] == 1.0
        schema = http.get("/openapi.json").json()["components"]["schemas"]["GenerationCreate"]
        assert "density" in json.dumps(schema)
        bad = http.post("/v1/generations", headers=headers, json={"model": "toy", "params": {"density": 2}})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "params.density"
        job = http.post("/v1/generations", headers=headers,
                        json={"model": "toy", "params": {"bars": 2, "density": 0.6}, "seed": 1}).json()
        record = wait_until_finished(http, job["id"], headers)
        assert record["status"] == "succeeded", record
        assert record["result"]["hits"] > 0 and http.get(f"/v1/generations/{job['id']}/midi",
                                                         headers=headers).status_code == 200

        # the CLI of an install that does not know the family (a process without the registration) runs it remotely
        out = tmp_path / "remote-toy.mid"
        done = subprocess.run([sys.executable, "-m", "tunesmith", "generate", "toy", "--bars", "1", "--param",
                               "density=0.7", "--seed", "4", "--server", server.url, "--api-key",
                               secret_of(headers), "--json", "-o", str(out)], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "TUNESMITH_DATA_DIR": str(tmp_path / "cli")})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["result"]["hits"] > 0 and out.read_bytes()[:4] == b"MThd"
        unknown = subprocess.run([sys.executable, "-m", "tunesmith", "generate", "toy", "-o", str(out)],
                                 capture_output=True, text=True, timeout=120)
        assert unknown.returncode == 2 and "unknown model 'toy'" in unknown.stderr  # not installed here

        open_studio(page, server, secret_of(headers))
        page.select_option("#model", "toy")
        page.wait_for_selector("#param-density")
        page.fill("#param-bars", "1")
        page.fill("#param-density", "0.3")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#result').dataset.status === 'succeeded'", timeout=90_000)
        assert page.problems == []


def test_local_and_served_works_of_one_request_are_the_same(tmp_path, monkeypatch):
    """The pipeline under the CLI and the worker: the same request, seed and work id give the same MIDI and
    audio content (the signed content hash leaves out only the embedded manifest)."""
    import httpx2 as httpx

    from tunesmith.config import Settings
    from tunesmith.generation.catalog import local_entry
    from tunesmith.generation.pipeline import deliver, make_work
    from tunesmith.generation.signing import Stamper, work_payload

    weights = tiny_weights(tmp_path / "weights")
    settings = Settings(data_dir=tmp_path / "data", weights_dir=weights, workers=1, poll_seconds=0.1,
                        requests_per_minute=10_000, preload=["folk"])
    headers = make_key(settings, "same")
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        job = http.post("/v1/generations", headers=headers, json={
            "model": "folk", "params": {"bars": 2, "key": "G major", "tempo": 120}, "seed": 11}).json()
        record = wait_until_finished(http, job["id"], headers)
    assert record["status"] == "succeeded", record
    entry = local_entry("folk", weights / "folk.json")
    made = make_work(entry, record["params"])
    files = {"mid": tmp_path / "local.mid", "wav": tmp_path / "local.wav"}
    provenance = deliver(made, entry, files, payload=work_payload(record["id"]), stamper=Stamper(tmp_path / "k"))
    served = record["provenance"]["content_sha256"]
    assert provenance["content_sha256"]["mid"] == served["mid"]
    assert provenance["content_sha256"]["wav"] == served["wav"]
