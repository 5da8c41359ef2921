"""The song model: compound-word tokens of grooves songs (round trip), the network and its NumPy stepper, a tiny
model trained and resumed on a tiny real corpus through `tunesmith train song`, and songs generated through the
registry's family and the pipeline: bars, meter, sections, tracks, pitch ranges, loops, style blends, bad input."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from tunesmith import families
from tunesmith.audio.dsp import loudness
from tunesmith.compose.song import BAND_SHARPNESS, SongWriter, band_fit
from tunesmith.compose.song_plan import MeterPlan, loop_plan, plan_sections, resolve_style, song_plan
from tunesmith.data.arrange import ROLES as CORPUS_ROLES
from tunesmith.data.corpora.grooves import build_grooves, iter_songs
from tunesmith.data.styles import STYLE_FAMILIES, resolve_family
from tunesmith.errors import ParameterError
from tunesmith.families import Resolving
from tunesmith.families.params import check_params
from tunesmith.generation.catalog import local_entry
from tunesmith.generation.pipeline import SAMPLE_RATE, make_work
from tunesmith.models.song import SongStepper, SongTransformer
from tunesmith.symbolic.harmony import QUALITIES, parse_chord
from tunesmith.symbolic.keys import parse_key, scale_pitch_classes
from tunesmith.symbolic.score import strong_beats
from tunesmith.symbolic.song_tokens import (
    CHORD,
    COLUMN,
    DURATION_BINS,
    ROLES,
    STEPS_PER_BEAT,
    VELOCITY_BIN,
    SectionSpan,
    bar_steps,
    decode_song,
    duration_bin,
    encode_song,
    head_targets,
    network_spec,
    remi_length,
)
from tunesmith.train.song import SongTrainConfig, train_song
from tunesmith.train.song_data import EnergyTable, band_tracks, encode_record

LIMIT = 6  # songs of the tiny corpus: the first families in turn (swing, big band, jazz, bebop, jazz waltz, blues)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A real grooves build of a few songs, every second one moved to the valid split (a build this small puts
    all of them in train)."""
    out = tmp_path_factory.mktemp("grooves") / "grooves"
    build_grooves(out, limit=LIMIT, workers=2)
    manifest = out / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    for i, record in enumerate(records):
        record["split"] = "valid" if i % 2 else "train"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> Path:
    """A tiny song model trained for a few steps through `tunesmith train song`, then resumed."""
    from tunesmith.cli import main

    out = tmp_path_factory.mktemp("song-run")
    common = ["train", "song", "--data", str(corpus), "--out", str(out), "--dim", "16", "--layers", "1", "--heads",
              "2", "--window", "96", "--batch-size", "4", "--lr", "0.01", "--eval-every", "3", "--eval-events",
              "4000", "--threads", "1"]
    assert main([*common, "--max-steps", "6"]) == 0
    assert main([*common, "--max-steps", "3", "--resume"]) == 0
    return out


# ------------------------------------------------------------------------------------------------ tokens


def test_the_band_roles_are_the_corpus_roles():
    assert ROLES == CORPUS_ROLES


def test_grid_and_bins():
    assert bar_steps((4, 4)) == 48 and bar_steps((3, 4)) == 36 and bar_steps((6, 8)) == 36
    assert bar_steps((12, 8)) == 72 and bar_steps((2, 4)) == 24
    with pytest.raises(ParameterError, match="7/4"):
        bar_steps((7, 4))
    assert [DURATION_BINS[duration_bin(s)] for s in (0.2, 1, 3, 12, 13, 15, 50, 10_000)] == [1, 1, 3, 12, 14, 16, 48,
                                                                                              288]


def _expected_notes(song, bars: int, per_bar: int) -> dict[str, Counter]:
    """What the encoding must keep of a record: each note on the grid, merged by role, its duration bin and its
    velocity bin (drums: no duration)."""
    out: dict[str, dict] = {role: {} for role in ROLES}
    for role, notes in band_tracks(song):
        for note in notes:
            step = round(note.start * STEPS_PER_BEAT)
            if not 0 <= step < bars * per_bar:
                continue
            duration = None if role == "drums" else duration_bin(note.duration * STEPS_PER_BEAT)
            key = (step, note.pitch)
            old = out[role].get(key)
            velocity = note.velocity // VELOCITY_BIN
            if old is not None:
                duration = None if role == "drums" else max(duration, old[0])
                velocity = max(velocity, old[1])
            out[role][key] = (duration, velocity)
    return {role: Counter((k, v) for k, v in notes.items()) for role, notes in out.items()}


def test_a_corpus_song_round_trips(corpus):
    table = EnergyTable({})
    for song in iter_songs(corpus):
        labels = song.labels
        meter = tuple(int(x) for x in labels["meter"].split("/"))
        per_bar = bar_steps(meter)
        example = encode_record(song, table)
        decoded = decode_song(example.steps, meter=meter)
        assert decoded.bars == labels["bars"]
        got = {role: Counter(((round(n.start * STEPS_PER_BEAT), n.pitch),
                              (None if role == "drums" else duration_bin(n.duration * STEPS_PER_BEAT),
                               n.velocity // VELOCITY_BIN)) for n in notes) for role, notes in decoded.notes.items()}
        assert got == _expected_notes(song, labels["bars"], per_bar), song.record.id
        assert sum(map(len, decoded.notes.values())) > 0
        # chords: every change of root or quality, at its grid position
        wanted, last = [], None
        for beat, symbol in labels["chords"]:
            chord = parse_chord(symbol)
            if (chord.root, chord.quality) != last and round(beat * STEPS_PER_BEAT) < labels["bars"] * per_bar:
                wanted.append((round(beat * STEPS_PER_BEAT), chord.root, chord.quality))
                last = (chord.root, chord.quality)
        assert [(round(b * STEPS_PER_BEAT), c.root, c.quality) for b, c in decoded.chords] == wanted
        assert [(s.name, s.start_bar, s.bars) for s in decoded.sections] == [
            (s["section"], s["start_bar"], s["bars"]) for s in labels["sections"]]
        again = encode_song(list(decoded.notes.items()), meter=meter, bars=decoded.bars, tonic=example.tonic,
                            chords=decoded.chords, sections=decoded.sections)
        assert np.array_equal(again, example.steps)
        chords = example.steps[example.steps[:, COLUMN["kind"]] == CHORD]
        assert np.array_equal((chords[:, COLUMN["degree"]] - 1 + example.tonic) % 12, chords[:, COLUMN["root"]] - 1)


def test_compound_steps_are_much_shorter_than_remi(corpus):
    table = EnergyTable({})
    steps = remi = 0
    for song in iter_songs(corpus):
        example = encode_record(song, table)
        steps += len(example.steps)
        remi += remi_length(example.steps)
    assert remi > 2.5 * steps


# ------------------------------------------------------------------------------------------------ network


def test_the_stepper_matches_the_torch_model():
    torch.manual_seed(0)
    model = SongTransformer(**network_spec(), n_styles=4, n_meters=2, dim=32, layers=2, heads=4).eval()
    from tunesmith.symbolic.score import Note

    tracks = [("drums", [Note(36 + i % 3, i * 0.5, 0.1, 100) for i in range(12)]),
              ("bass", [Note(40 + i % 5, i * 1.0, 0.9, 80) for i in range(6)]),
              ("lead", [Note(72, 1.5, 2.0, 90)])]
    steps = encode_song(tracks, meter=(3, 4), bars=2, tonic=9, chords=[(0, "Am"), (3, "E7")],
                        sections=[SectionSpan("verse", 0, 2, 3)])
    cond = {"style": torch.tensor([[0.7, 0.0, 0.3, 0.0]]), "key": torch.tensor([9 + 12]), "meter": torch.tensor([1]),
            "tempo": torch.tensor([97.0]), "tracks": torch.tensor([[1.0, 1, 0, 0, 1]])}
    batch = torch.from_numpy(steps.astype(np.int64))[None]
    with torch.no_grad():
        logits = model(batch, cond)
    targets = head_targets(steps[1:][None])
    stepper = SongStepper(model)
    stepper.start(cond)
    for t in range(len(steps) - 1):
        h = stepper.feed(steps[t])
        nxt = steps[t + 1]
        inputs = {}
        for name, reads in model.output_reads.items():
            z = h
            for column in reads:
                z = stepper.add(z, column, int(nxt[COLUMN[column]]))
            inputs[name] = z
        for name, z in inputs.items():
            if targets[name][0, t] >= 0:
                assert np.allclose(stepper.logits(name, z), logits[name][0, t].numpy(), atol=1e-4), (t, name)
    stepper.start(cond)
    assert np.allclose(stepper.feed(steps[:-1]), h, atol=1e-5)  # a chunk gives what step by step gave

    # guided: both conditionings side by side, the heads answer other + strength * (cond - other)
    other = {**cond, "style": torch.tensor([[0.25, 0.25, 0.25, 0.25]])}
    alone = SongStepper(model)
    alone.start(other)
    stepper.start(cond, contrast=other, strength=2.5)
    for t in range(len(steps) - 1):
        h_pair, h_other = stepper.feed(steps[t]), alone.feed(steps[t])
        assert h_pair.shape == (2, len(h))
        z_pair = stepper.add(h_pair, "kind", int(steps[t + 1][COLUMN["kind"]]))
        z_other = alone.add(h_other, "kind", int(steps[t + 1][COLUMN["kind"]]))
        plain = stepper.logits("when", z_pair[0])
        expected = alone.logits("when", z_other) + 2.5 * (plain - alone.logits("when", z_other))
        assert np.allclose(stepper.logits("when", z_pair), expected, atol=1e-4), t
    stepper.start(cond, contrast=other, strength=1.0)  # strength 1: plain sampling, one row
    assert stepper.feed(steps[0]).shape == h.shape
    # a rewound stepper forgets the steps after the point it goes back to: feeding other steps there gives what a
    # stepper that never saw them gives
    stepper.start(cond)
    stepper.feed(steps[:10])
    stepper.feed(steps[10:20])
    stepper.rewind(10)
    assert np.allclose(stepper.feed(steps[20:25]), (fresh := SongStepper(model), fresh.start(cond),
                                                    fresh.feed(steps[:10]), fresh.feed(steps[20:25]))[-1], atol=1e-5)
    with pytest.raises(ValueError, match="rewind"):
        stepper.rewind(16)
    # attention limited to a window shorter than the song: a chunk fed after some steps sees the keys each of its
    # steps would have seen fed alone
    short = SongStepper(model, window=6)
    short.start(cond)
    for row in steps[:20]:
        h_step = short.feed(row)
    short.start(cond)
    short.feed(steps[:10])
    assert np.allclose(short.feed(steps[10:20]), h_step, atol=1e-5)
    short.start(cond)
    assert not np.allclose(short.feed(steps[:20]), h, atol=1e-3)  # (h: 20 steps seen with the whole window)


def test_nucleus_sampling_draws_only_the_likeliest_tokens_in_proportion():
    from tunesmith.compose.sampling import sample_token

    probs = np.array([0.05, 0.5, 0.01, 0.3, 0.14])
    logits, allowed = np.log(probs).astype(np.float32), np.ones(5, dtype=bool)
    rng = np.random.default_rng(0)
    draws = np.bincount([sample_token(logits, allowed=allowed, top_p=0.75, rng=rng) for _ in range(2000)],
                        minlength=5)
    assert draws[[0, 2, 4]].sum() == 0  # 0.5 + 0.3 reach 0.75: the rest is cut
    assert abs(draws[1] / draws.sum() - 0.5 / 0.8) < 0.04
    allowed[1] = False  # a token not allowed is never drawn; the nucleus is taken over the allowed ones
    draws = np.bincount([sample_token(logits, allowed=allowed, top_p=0.75, rng=rng) for _ in range(2000)],
                        minlength=5)
    assert draws[[0, 1, 2]].sum() == 0 and draws[3] > 0 and draws[4] > 0  # 0.6 + 0.28 of the allowed
    bias = np.array([0.0, 0.0, 0.0, -np.inf, 0.0])
    assert {sample_token(logits, allowed=allowed, bias=bias, top_p=1.0, rng=rng) for _ in range(200)} <= {0, 2, 4}


# ------------------------------------------------------------------------------------------------ training


def test_training_lowers_held_out_nll_and_resumes(trained, corpus):
    rows = [line.split(",") for line in (trained / "metrics.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    nll = [float(r[header.index("valid_nll")]) for r in rows if r[header.index("valid_nll")]]
    assert len(nll) >= 3 and nll[-1] < nll[0]
    card = json.loads((trained / "latest.json").read_text())
    assert card["family"] == "song" and card["training"]["steps"] == 9 and len(card["training"]["runs"]) == 2
    assert card["metrics"]["best_valid_nll"] <= nll[0]
    assert card["data"]["licences"] and "MMA" in card["data"]["trained_on"]
    assert card["data"]["train_songs"] == LIMIT // 2 and card["data"]["valid_songs"] == LIMIT - LIMIT // 2
    assert [s["id"] for s in card["styles"]] == [f.id for f in STYLE_FAMILIES]
    # each training song's style file has an embedding of its own, the family's files in the family's order
    files = card["style_files"]
    assert card["kwargs"]["n_style_files"] == len(files) >= 1
    records = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    trained_files = {r["labels"]["style_file"] for r in records if r["split"] == "train"}
    assert {f["id"] for f in files} == trained_files and sum(f["songs"] for f in files) == LIMIT // 2
    # ... and says which bands its songs play (the resumed run read them off the data again)
    from tunesmith.data.corpora.grooves import band_tracks, iter_songs
    from tunesmith.train.song_data import song_band

    bands = Counter((s.labels["style_file"], song_band(band_tracks(s))) for s in iter_songs(corpus, "train"))
    assert {(f["id"], band): n for f in files for band, n in f["bands"].items()} == dict(bands)
    assert all(set(band.split("+")) <= set(ROLES) for f in files for band in f["bands"])
    families = [s["id"] for s in card["styles"]]
    assert [families.index(f["family"]) for f in files] == sorted(families.index(f["family"]) for f in files)
    assert "4/4" in card["meters"] and set(card["role_ranges"]) <= set(ROLES) - {"drums"}
    assert card["harmony"] and all(0 <= degree < 12 and quality in QUALITIES for entries in card["harmony"].values()
                                   for degree, quality, _ in entries)
    assert (trained / "best.json").is_file() and (trained / "curves.png").is_file()


def test_an_older_card_gets_its_style_files_bands_from_its_own_data(trained, corpus, tmp_path, capsys):
    from tunesmith.train.song_card import main as song_card

    card = json.loads((trained / "latest.json").read_text())
    older = {**card, "style_files": [{k: v for k, v in f.items() if k != "bands"} for f in card["style_files"]]}
    path = tmp_path / "song.json"
    path.write_text(json.dumps(older))
    assert song_card([str(path), str(corpus)]) == 0
    refreshed = json.loads(path.read_text())
    assert refreshed["style_files"] == card["style_files"]
    assert refreshed["card_updates"][-1]["command"].startswith("python -m tunesmith.train.song_card")
    path.write_text(json.dumps({**older, "data": {**older["data"], "manifest_sha256": "0" * 64}}))
    assert song_card([str(path), str(corpus)]) == 2  # another build: refused, the card left as it was
    assert "is not the build" in capsys.readouterr().err
    assert all("bands" not in f for f in json.loads(path.read_text())["style_files"])


def test_a_run_can_start_from_a_trained_model(trained, corpus, tmp_path):
    from tunesmith.cli import main

    out = tmp_path / "warm"
    common = ["train", "song", "--data", str(corpus), "--out", str(out), "--window", "96", "--batch-size", "4",
              "--eval-every", "3", "--eval-events", "4000", "--threads", "1", "--max-steps", "1"]
    assert main([*common, "--init", str(trained / "latest.json")]) == 0  # one step of warm-up: the weights barely move
    before, after = (json.loads((d / "latest.json").read_text()) for d in (trained, out))
    assert after["kwargs"] == before["kwargs"] and len(after["training"]["runs"]) == 3
    assert after["metrics"]["valid_nll"] == pytest.approx(before["metrics"]["valid_nll"], rel=1e-3)
    assert main([*common, "--init", str(trained / "latest.json"), "--resume"]) == 2  # one or the other
    # a family-only model (--no-style-files) started with style files: the files start at zero, so the run's first
    # evaluation is the family-only model's
    plain = tmp_path / "plain"
    assert main([*common[:5], str(plain), *common[6:], "--dim", "16", "--layers", "1", "--heads", "2",
                 "--no-style-files"]) == 0
    family_only = json.loads((plain / "latest.json").read_text())
    assert family_only["style_files"] == [] and "n_style_files" not in family_only["kwargs"]
    assert main([*common[:5], str(tmp_path / "with-files"), *common[6:], "--init", str(plain / "latest.json"),
                 "--lr", "1e-9"]) == 0
    with_files = json.loads((tmp_path / "with-files" / "latest.json").read_text())
    assert with_files["kwargs"]["n_style_files"] == len(with_files["style_files"]) >= 1
    assert with_files["metrics"]["valid_nll"] == pytest.approx(family_only["metrics"]["valid_nll"], rel=1e-5)


def test_style_files_start_as_their_family(tmp_path):
    """A model trained without style files, started with them (`--init`), answers as before: every style file's
    embedding starts at zero; once it moves, the style file changes what the model says."""
    import torch

    from tunesmith.checkpoints import save_checkpoint
    from tunesmith.train.song import _warm_start

    torch.manual_seed(0)
    plain = SongTransformer(**network_spec(), n_styles=4, n_meters=2, dim=16, layers=1, heads=2).eval()
    save_checkpoint(tmp_path / "plain", "latest", plain, {"family": "song", "kwargs": plain.kwargs})
    card = json.loads((tmp_path / "plain" / "latest.json").read_text())
    model = _warm_start(tmp_path / "plain" / "latest.json", card, ["a", "b", "c"]).eval()
    steps = torch.from_numpy(encode_song([("bass", [])], meter=(4, 4), bars=2, tonic=0, chords=[(0, "C")],
                                         sections=[SectionSpan("verse", 0, 2, 2)]).astype(np.int64))[None]
    cond = {"style": torch.tensor([[0.0, 1.0, 0.0, 0.0]]), "key": torch.tensor([0]), "meter": torch.tensor([1]),
            "tempo": torch.tensor([120.0]), "tracks": torch.ones(1, len(ROLES))}
    with torch.no_grad():
        before = plain(steps, cond)["when"]
        assert torch.allclose(model(steps, {**cond, "style_file": torch.tensor([[0.0, 1.0, 0.0]])})["when"], before)
        model.style_file.weight.normal_()
        assert not torch.allclose(model(steps, {**cond, "style_file": torch.tensor([[0.0, 1.0, 0.0]])})["when"],
                                  before)
    assert model.kwargs["n_style_files"] == 3 and "n_style_files" not in plain.kwargs


def test_style_files_are_matched_by_id_on_a_new_dataset(tmp_path):
    """Started on a dataset whose style files differ (a bigger build), a model keeps the embedding of each file
    it knows, wherever the file now sits in the table, and a new file starts at zero (as its family)."""
    import torch

    from tunesmith.checkpoints import save_checkpoint
    from tunesmith.train.song import _warm_start

    torch.manual_seed(0)
    old = SongTransformer(**network_spec(), n_styles=4, n_meters=2, n_style_files=2, dim=16, layers=1, heads=2)
    torch.nn.init.normal_(old.style_file.weight)
    save_checkpoint(tmp_path / "old", "latest", old, {"family": "song", "kwargs": old.kwargs,
                                                      "style_files": [{"id": "x/a"}, {"id": "x/b"}]})
    card = json.loads((tmp_path / "old" / "latest.json").read_text())
    model = _warm_start(tmp_path / "old" / "latest.json", card, ["x/b", "x/new", "x/a"])
    assert model.kwargs["n_style_files"] == 3
    assert torch.equal(model.style_file.weight[0], old.style_file.weight[1])
    assert torch.equal(model.style_file.weight[2], old.style_file.weight[0])
    assert not model.style_file.weight[1].any()
    assert torch.equal(model.style.weight, old.style.weight)


def test_a_model_learns_its_own_style_guidance(trained, corpus, tmp_path):
    """`--distill`: the KL from the teacher's guided heads falls, the card says so, and the writer then samples a
    strength in one pass (one conditioning row) where the teacher needs two."""
    import torch

    from tunesmith.checkpoints import save_checkpoint
    from tunesmith.cli import main
    from tunesmith.models.song import distill_loss

    # the tiny trained model hardly tells its styles apart yet: from its weights, a teacher whose styles differ
    teacher_model = SongWriter.load(trained / "latest.json").model
    with torch.no_grad():
        teacher_model.style.weight.mul_(20.0)
        for head in teacher_model.heads.values():
            head.out.weight.mul_(20.0)
    save_checkpoint(tmp_path / "teacher", "latest", teacher_model,
                    {k: v for k, v in json.loads((trained / "latest.json").read_text()).items()
                     if k not in ("weights_sha256",)})
    out = tmp_path / "distilled"
    common = ["train", "song", "--data", str(corpus), "--out", str(out), "--window", "96", "--batch-size", "4",
              "--eval-every", "4", "--eval-events", "4000", "--threads", "1", "--lr", "0.01"]
    # the harness's API, for a warm-up of one step: in 12 steps of the usual 200-step warm-up nothing is taught
    config = SongTrainConfig(max_steps=12, window=96, batch_size=4, eval_every=4, eval_events=4000, threads=1,
                             lr=0.01, warmup=1, distill=3.0)
    train_song(corpus, out, config, init=tmp_path / "teacher" / "latest.json", progress_bar=False)
    card = json.loads((out / "latest.json").read_text())
    assert card["guidance"]["kind"] == "distilled" and card["guidance"]["strengths"] == [1.0, 3.0]
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()]
    kl = [float(r[rows[0].index("valid_kl")]) for r in rows[1:] if r[rows[0].index("valid_kl")]]
    assert len(kl) >= 3 and kl[-1] < kl[0] and card["metrics"]["best_valid_kl"] <= kl[0]
    student, teacher = SongWriter.load(out / "latest.json"), SongWriter.load(tmp_path / "teacher" / "latest.json")
    student.generate(style="pop", bars=8, seed=3, style_strength=2.0)
    teacher.generate(style="pop", bars=8, seed=3, style_strength=2.0)
    assert len(student.stepper.cond) == 1 and len(teacher.stepper.cond) == 2
    # the loss itself: a model is its own student at strength 1 (no divergence), not at strength 2
    steps = torch.from_numpy(encode_record(next(iter_songs(corpus, "train")), EnergyTable({})).steps[:40][None]).long()
    cond = {"style": torch.eye(len(STYLE_FAMILIES))[:1], "key": torch.tensor([0]), "meter": torch.tensor([0]),
            "tempo": torch.tensor([120.0]), "tracks": torch.ones(1, len(ROLES))}
    targets = head_targets(steps[0].numpy())
    targets = {name: torch.from_numpy(t[1:][None]).long() for name, t in targets.items()}
    same, _ = distill_loss(teacher.model, teacher.model, steps, cond, targets, torch.tensor([1.0]))
    apart, _ = distill_loss(teacher.model, teacher.model, steps, cond, targets, torch.tensor([2.0]))
    assert float(same.detach()) == pytest.approx(0.0, abs=1e-3) and float(apart.detach()) > 1e-3
    assert main([*common, "--max-steps", "1", "--distill", "3"]) == 2  # nothing to teach without --init


# ------------------------------------------------------------------------------------------------ generation


def _resolve(entry, **explicit):
    params = check_params(entry.family.params, explicit, model_id="song").model_dump(exclude_none=True)
    return entry.family.resolve(Resolving(model_id="song", card=entry.card, explicit=params, from_prompt={},
                                          notes=[], seed=7))


@pytest.fixture(scope="module")
def entry(trained):
    return local_entry("song", trained)


def test_the_family_is_registered():
    assert families.get("song").card_family == "song"
    assert families.trainers()["song"].name == "song"


def test_a_song_through_the_pipeline(entry):
    key = "A minor" if "minor" in entry.card["harmony"] else "A major"  # a mode the tiny corpus has chords of
    params = _resolve(entry, style="bossa nova", key=key, tempo=200, bars=24)
    made = make_work(entry, params)
    score, result = made.work.score, made.work.result
    assert result["bars"] == 24 and score.time_signature == (4, 4) and score.key == key
    sections = result["sections"]
    assert sections[0]["bars"][0] == 1 and sections[-1]["bars"][1] == 24
    assert all(a["bars"][1] + 1 == b["bars"][0] for a, b in itertools.pairwise(sections))
    assert [s["name"] for s in sections] == ["intro", "verse", "chorus", "verse", "chorus", "chorus", "outro"]
    assert [p.name for p in score.parts] == list(ROLES) and [t["name"] for t in result["tracks"]] == list(ROLES)
    assert score.parts[0].is_drum and not any(p.is_drum for p in score.parts[1:])
    end = 24 * score.bar_beats
    assert all(0 <= n.start < end and n.end <= end + 1e-9 for p in score.parts for n in p.notes)
    _check_pitches(score, entry.card, result["chords"])
    tonic, mode = parse_key(score.key)
    played = {((parse_chord(c["chord"]).root - tonic) % 12, parse_chord(c["chord"]).quality) for c in result["chords"]}
    assert played <= {(degree, quality) for degree, quality, _ in entry.card["harmony"][mode]}
    # later choruses replay the first note for note
    first, *others = (s for s in sections if s["name"] == "chorus")
    for part in score.parts:
        def bars_of(section, notes=part.notes, lead=part.name == "lead"):
            start = (section["bars"][0] - 1) * score.bar_beats
            length = (section["bars"][1] - section["bars"][0] + 1) * score.bar_beats
            end = start + length  # a note held past the section is cut at the song's end after the last chorus
            return sorted((round(n.start - start, 6), n.pitch, n.velocity,
                           None if lead else round(min(n.end, end) - n.start, 6))  # the lead's last note ends
                          for n in notes if start <= n.start < end)  # where the next section's first begins
        assert len(others) == 2 and all(bars_of(first) == bars_of(other) for other in others)
    assert made.audio is not None and made.audio.shape[1] / SAMPLE_RATE >= 24 * 4 * 60 / 200
    # the job reports the mix it made, and what was measured agrees with the audio
    mix = result["mix"]
    assert mix["true_peak_dbtp"] <= -1.0 + 0.05 and 0 <= mix["limiter_max_reduction_db"] <= 8.0 + 1e-6
    assert abs(loudness(made.audio, sr=SAMPLE_RATE) - mix["loudness_lufs"]) < 0.1
    assert made.stems is not None and list(made.stems) == list(ROLES)  # a song always comes with its stems
    assert np.allclose(sum(made.stems.values()), made.audio, atol=1e-4)  # and they add up to the mix
    sounding = sum(bool(p.notes) for p in score.parts)  # played while the song was written (a silent one too)
    assert sounding >= 3 and result["stems_streamed"] == len(ROLES)


def _check_pitches(score, card, chords):
    tonic, mode = parse_key(score.key)
    scale = set(scale_pitch_classes(tonic, mode)) | ({(tonic + 9) % 12, (tonic + 11) % 12} if mode == "minor" else
                                                      set())
    changes = [((c["bar"] - 1) * score.bar_beats + c["beat"] - 1, parse_chord(c["chord"])) for c in chords]
    for part in score.parts:
        for note in part.notes:
            if part.is_drum:
                assert note.pitch in card["drum_keys"]
                continue
            low, high = card["role_ranges"][part.name]
            assert low <= note.pitch <= high, (part.name, note.pitch)
            chord = [c for b, c in changes if b <= note.start + 1e-9][-1]
            tones = {(chord.root + i) % 12 for i in QUALITIES[chord.quality]}
            assert note.pitch % 12 in scale | tones, (part.name, note)
            on_strong_beat = any(abs(note.start % score.bar_beats - beat) < 1e-6
                                 for beat in strong_beats(score.bar_beats, score.time_signature))
            if on_strong_beat and part.name in ("bass", "chords", "pad"):  # the accompaniment's chord tones
                assert note.pitch % 12 in tones, (part.name, note, chord)


@pytest.mark.parametrize(("meter", "strong"), [((4, 4), {1, 25}), ((3, 4), {1}), ((6, 8), {1, 19})])
def test_the_accompaniment_plays_chord_tones_on_strong_beats(meter, strong):
    from tunesmith.compose.song_sampler import Constraints
    from tunesmith.symbolic.song_tokens import QUALITY_NAMES, STEPS_PER_BEAT

    assert STEPS_PER_BEAT == 12  # the positions above: beat 3 of 4/4 is step 24, the second dotted quarter 18
    ranges = {role: (36, 84) for role in ("bass", "chords", "pad", "lead")}
    c = Constraints(meter=meter, tracks=list(ROLES), role_ranges=ranges, drum_keys=[36, 38], tonic=0, mode="major")
    g7 = (1 + 7, 1 + QUALITY_NAMES.index("7"))  # G7 in C major: G B D F
    for position in range(1, c.per_bar + 1):
        allowed = c.what(g7, position)
        for role in ROLES:
            track = ROLES.index(role)
            classes = {k % 12 for k in range(128) if allowed[track * 128 + k]}
            if role == "drums":
                assert classes == {36 % 12, 38 % 12}
            elif role in ("bass", "chords", "pad") and position in strong:
                assert classes == {7, 11, 2, 5}, (role, position)
            else:  # the scale (and the chord's tones) between strong beats, and the lead anywhere
                assert classes == {0, 2, 4, 5, 7, 9, 11}, (role, position)
        assert c.last_what(g7, position) == int(np.flatnonzero(allowed)[-1])


def test_songs_written_at_once_on_threads_are_those_written_one_after_the_other(entry):
    """A server's worker threads share one loaded writer: each thread samples with a stepper (and its cache) of
    its own, so songs written at the same time are the songs each would be alone."""
    from concurrent.futures import ThreadPoolExecutor

    writer = SongWriter.load(entry.card_path)
    asks = [dict(style=style, bars=16, seed=seed) for seed, style in enumerate(("rock", "bossa nova", "house"))]
    alone = [writer.generate(**ask).tokens for ask in asks]
    for _ in range(2):
        with ThreadPoolExecutor(3) as pool:
            together = list(pool.map(lambda ask: writer.generate(**ask).tokens, asks))
        assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


def test_meters_tracks_and_instruments(entry):
    writer = SongWriter.load(entry.card_path)
    waltz = writer.generate(style="waltz", meter="3/4", bars=8, tempo=150, tracks=["bass", "chords"], seed=1,
                            instruments={"chords": "accordion"})
    assert waltz.score.time_signature == (3, 4) and [p.name for p in waltz.score.parts] == ["bass", "chords"]
    assert waltz.score.parts[1].program == 21 and all(n.end <= 8 * 3 + 1e-9 for p in waltz.score.parts
                                                        for n in p.notes)
    blues = writer.generate(style="blues", meter="12/8", bars=8, tempo=90, seed=2)
    assert blues.score.time_signature == (12, 8)
    assert all(abs(n.start * 2 - round(n.start * 2)) < 1e-6 for p in blues.score.parts for n in p.notes)  # eighths
    march = writer.generate(style="march", meter="2/4", bars=9, tempo=200, seed=3)
    assert march.score.time_signature == (2, 4) and march.params["bars"] == 9
    assert march.sections[-1]["bars"][1] == 9 and all(n.start < 18 for p in march.score.parts for n in p.notes)


class QuietGuard:
    """A copy guard (`tunesmith.compose.song_sampler.BarGuard`) that finds nothing copied; tests override what they
    watch."""

    def __init__(self, meter, roles) -> None:
        self.redrawn = 0

    def copied(self, bar, block, after=()) -> set[int]:
        return set()

    def accept(self, bar, block) -> None:
        pass

    def redrew(self) -> None:
        self.redrawn += 1

    def note_copies(self, bar, rows, track) -> bool:
        return False


def test_a_bar_that_keeps_copying_is_drawn_up_to_copy_redraws_times(entry, monkeypatch):
    """A style's ostinato is copied by most draws of a bar, so a copying bar gets more tries (`COPY_REDRAWS`)
    than a silent one (`REDRAWS`), those after the first `REDRAWS` at `COPY_HEAT` times the temperature; when every
    draw copies, the first is kept and the song goes on."""
    from tunesmith.compose.song_sampler import COPY_HEAT, COPY_REDRAWS, REDRAWS, SongSampler

    temperatures: list[float] = []
    bar = SongSampler.bar
    monkeypatch.setattr(SongSampler, "bar", lambda self, *a, **k: temperatures.append(self.temperature) or bar(
        self, *a, **k))

    class AlwaysCopying(QuietGuard):  # a guard that finds every bar's bass copied
        def __init__(self, meter, roles) -> None:
            super().__init__(meter, roles)
            self.asked = Counter()

        def copied(self, bar, block, after=()) -> set[int]:
            self.asked[bar] += 1
            return {1 + ROLES.index("bass")}

    writer, guards = SongWriter.load(entry.card_path), []
    writer.copy_guard = lambda meter, roles: guards.append(AlwaysCopying(meter, roles)) or guards[-1]
    again = writer.generate(style="rock", bars=8, seed=1, tracks=["drums", "bass"])
    asked = guards[0].asked
    assert COPY_REDRAWS > REDRAWS and asked and set(asked.values()) == {1 + COPY_REDRAWS}
    assert again.copy_redraws == COPY_REDRAWS * len(asked)
    first_bar = temperatures[:1 + COPY_REDRAWS]
    assert first_bar == [1.0] * (1 + REDRAWS) + [COPY_HEAT] * (COPY_REDRAWS - REDRAWS), temperatures[:10]
    assert again.sections[-1]["bars"][1] == 8 and any(n.start >= 6 * 4 for p in again.score.parts for n in p.notes)


def test_a_bold_redraw_strikes_each_pitch_that_would_end_a_copied_run(entry, monkeypatch):
    """The redraws after the first `REDRAWS` ask the guard about every bass note as it is drawn; a pitch it says
    would end a copied run is struck and the note drawn again (`NOTE_REDRAWS` times at most), so those draws
    play such pitches far less often than the draws before them."""
    from tunesmith.compose.song_sampler import NOTE_REDRAWS, SongSampler
    from tunesmith.symbolic.song_tokens import COLUMN, NOTE

    bass = 1 + ROLES.index("bass")
    draws: list[tuple[bool, np.ndarray]] = []
    bar = SongSampler.bar

    def recorded(self, *args, **kwargs):
        block, h = bar(self, *args, **kwargs)
        draws.append((self.guarded_bar is not None, block))
        return block, h

    monkeypatch.setattr(SongSampler, "bar", recorded)

    class OstinatoGuard(QuietGuard):  # every bar's bass copies; a bass note on an even key ends the copied run
        def __init__(self, meter, roles) -> None:
            super().__init__(meter, roles)
            self.asked = 0

        def copied(self, bar, block, after=()) -> set[int]:
            return {bass}

        def note_copies(self, bar, rows, track) -> bool:
            self.asked += 1
            return track == bass and rows[-1, COLUMN["pitch"]] % 2 == 0

    def even_share(guarded: bool) -> float:
        pitches = [int(row[COLUMN["pitch"]]) for g, block in draws if g == guarded for row in block
                   if row[COLUMN["kind"]] == NOTE and row[COLUMN["track"]] == bass]
        assert len(pitches) > 20
        return sum(p % 2 == 0 for p in pitches) / len(pitches)

    writer, guards = SongWriter.load(entry.card_path), []
    writer.copy_guard = lambda meter, roles: guards.append(OstinatoGuard(meter, roles)) or guards[-1]
    writer.generate(style="rock", bars=8, seed=3, tracks=["drums", "bass"])
    assert NOTE_REDRAWS >= 1 and guards[0].asked > 0
    assert even_share(True) < even_share(False) / 3, (even_share(True), even_share(False))


def test_which_replayed_bars_a_bar_is_checked_with():
    """A chorus (bars 6-9) played again at 14-17 and 18-21: the verse's last bar (13) runs into the replay (14,
    15); the chorus's last bar (9), replayed at 17, runs into the third chorus (18, 19); no other bar runs into
    a replay of bars already written."""
    from tunesmith.compose.song_sampler import REPLAY_LOOKAHEAD, replays_after

    copy_from = {14 + k: 6 + k for k in range(4)} | {18 + k: 6 + k for k in range(4)}
    assert REPLAY_LOOKAHEAD == 2
    assert replays_after(13, copy_from) == [[6, 7]]
    assert replays_after(9, copy_from) == [[6, 7]]
    assert all(replays_after(bar, copy_from) == [] for bar in (5, 6, 7, 8, 10, 12))
    assert replays_after(13, copy_from, given={14}) == []  # a user's bar is not a replay


def test_the_bar_before_a_replayed_chorus_is_checked_with_the_chorus(entry):
    """A chorus played again is fed as it is; the bar before it is checked for runs into it, the guard given
    the rows of the bars it replays (`replays_after`)."""
    from tunesmith.symbolic.song_tokens import CONTEXT_START

    class Recording(QuietGuard):
        def __init__(self, meter, roles) -> None:
            super().__init__(meter, roles)
            self.calls, self.accepted = [], {}

        def copied(self, bar, block, after=()) -> set[int]:
            self.calls.append((bar, [[rows.copy() for rows in run] for run in after]))
            return set()

        def accept(self, bar, block) -> None:
            self.accepted[bar] = block.copy()

    writer, guards = SongWriter.load(entry.card_path), []
    writer.copy_guard = lambda meter, roles: guards.append(Recording(meter, roles)) or guards[-1]
    song = writer.generate(style="rock", bars=24, seed=2, tracks=["drums", "bass"])
    choruses = [s["bars"][0] - 1 for s in song.sections if s["name"] == "chorus"]
    first_end = next(s["bars"][1] - 1 for s in song.sections if s["name"] == "chorus")  # its last bar, 0-based
    checked = {bar: after for bar, after in guards[0].calls if after}
    assert len(choruses) >= 2 and checked
    accepted = guards[0].accepted
    for bar, after in checked.items():  # before a later chorus, or the first chorus's last bar (replayed later)
        assert bar + 1 in choruses[1:] or bar == first_end, (bar, choruses)
        for run in after:  # bars of the first chorus as written (their context aside)
            for k, rows in enumerate(run):
                assert np.array_equal(rows[:, :CONTEXT_START], accepted[choruses[0] + k][:, :CONTEXT_START])


def test_the_rhythm_section_does_not_drop_out(entry, monkeypatch):
    from tunesmith.compose import song_sampler
    from tunesmith.compose.song_sampler import STEADY_TRACKS

    def dropped_bars(redraws: int) -> int:
        """Body bars in which drums or bass are silent for the second bar running, over a few songs."""
        monkeypatch.setattr(song_sampler, "REDRAWS", redraws)
        writer, count = SongWriter.load(entry.card_path), 0
        for seed in range(4):
            song = writer.generate(style="rock", bars=24, tempo=120, tracks=["drums", "bass", "chords"], seed=seed)
            body = [b for s in song.sections if s["name"] in ("verse", "chorus", "bridge")
                    for b in range(s["bars"][0] - 1, s["bars"][1])]
            for part in song.score.parts:
                if 1 + ROLES.index(part.name) in STEADY_TRACKS:
                    played = {int(n.start // song.score.bar_beats) for n in part.notes}
                    count += sum(b not in played and b - 1 not in played and b - 1 in body for b in body)
        return count

    free = dropped_bars(0)
    assert free > 0  # the tiny model drops its drums and bass often
    assert dropped_bars(2) < free / 2


def test_the_lead_enters_with_the_intros_last_bar_and_rests_in_the_outro(entry, monkeypatch):
    from tunesmith.compose import song_sampler
    from tunesmith.compose.song_sampler import lead_resting_bars

    plan = song_plan(24, 0.5)  # intro of 2 bars, outro of 2
    assert [(s.name, s.start_bar, s.bars) for s in plan.sections][::len(plan.sections) - 1] == [
        ("intro", 0, 2), ("outro", 22, 2)]
    assert lead_resting_bars(plan) == {0, 22, 23}
    assert lead_resting_bars(plan, given={0}) == {22, 23}  # a song being continued: its intro is the user's

    def lead_bars(resting: bool) -> set[int]:
        """Bars in which the lead plays, over a few songs of 24 bars."""
        if not resting:
            monkeypatch.setattr(song_sampler, "lead_resting_bars", lambda plan, given=(): set())
        writer, bars = SongWriter.load(entry.card_path), set()
        for seed in range(3):
            song = writer.generate(style="pop", bars=24, tempo=110, seed=seed)
            lead = next(p for p in song.score.parts if p.name == "lead")
            bars |= {int(n.start // song.score.bar_beats) for n in lead.notes}
        return bars

    assert lead_bars(True) and not lead_bars(True) & {0, 22, 23}
    alone = SongWriter.load(entry.card_path).generate(style="pop", bars=24, tempo=110, tracks=["lead"], seed=0)
    assert [p.name for p in alone.score.parts] == ["lead"] and alone.score.parts[0].notes  # a lead alone plays on
    assert lead_bars(False) & {0, 22, 23}  # the tiny model plays its lead anywhere


def test_a_loop_flows_into_its_start(entry):
    params = _resolve(entry, style="house", loop=4, tempo=124)
    work = make_work(entry, params, audio=False).work
    score, result = work.score, work.result
    assert result["loop"] == 4 and result["bars"] == 4 and result["sections"] == [
        {"name": "loop", "bars": [1, 4], "energy": 0.5}]
    assert all(n.start >= 0 and n.end <= 16 + 1e-9 for p in score.parts for n in p.notes)
    # the loop is the second time through: its chords are the first time's, so its last bar leads into its
    # first bar as the first time's last bar led into this first bar
    writer = SongWriter.load(entry.card_path)
    plan = loop_plan(4, 0.5)
    assert plan.keep == (4, 4) and plan.chords_from == {4: 0, 5: 1, 6: 2, 7: 3} and plan.open_end
    song = writer.generate(style="house", loop=4, tempo=124, seed=params["seed"])
    assert song.chords == result["chords"] and song.chords[0]["bar"] == 1 and song.chords[0]["beat"] == 1.0


def test_a_loop_sounds_exactly_its_bars_with_its_ring_out_on_its_start(entry):
    """Its audio (mix and every stem) is 4 bars long to the sample, so played on repeat it has no gap; what rings on
    past its end sounds over its start, as it would when it loops; the job's estimate of its length agrees."""
    from tunesmith.generation.pipeline import wrap_tail

    params = _resolve(entry, style="house", loop=4, tempo=124, tracks=["pad", "chords"])
    made = make_work(entry, params, sr=16000, stems=True)
    loop = round(4 * 4 * 60 / 124 * 16000)
    assert made.audio.shape[-1] == loop and all(y.shape[-1] == loop for y in made.stems.values())
    assert families.get("song").seconds(params, None, entry.card) == pytest.approx(loop / 16000, abs=1e-3)
    y = np.arange(10, dtype=np.float32)[None].repeat(2, axis=0)
    assert wrap_tail(y, 4).tolist() == [[0 + 4 + 8, 1 + 5 + 9, 2 + 6, 3 + 7]] * 2
    assert wrap_tail(y[:, :3], 4).tolist() == [[0, 1, 2, 0]] * 2


def test_a_given_chord_chart_is_followed(entry):
    params = _resolve(entry, style="pop", bars=8, chords="Am | F | C G7", key="C major")
    work = make_work(entry, params, audio=False).work
    chords = [(c["bar"], c["beat"], c["chord"]) for c in work.result["chords"]]
    assert chords == [(1, 1.0, "Am"), (2, 1.0, "F"), (3, 1.0, "C"), (3, 3.0, "G7"), (4, 1.0, "Am"), (5, 1.0, "F"),
                      (6, 1.0, "C"), (6, 3.0, "G7"), (7, 1.0, "Am"), (8, 1.0, "F")]
    _check_pitches(work.score, entry.card, work.result["chords"])


def test_two_styles_blend(entry):
    writer = SongWriter.load(entry.card_path)
    weights = resolve_style("bossa nova:0.7+house:0.3", writer.styles)
    assert weights == pytest.approx({"bossa_nova": 0.7, "house": 0.3})
    plan = writer.meter_plan("4/4")

    def condition(w):
        return writer.stepper.condition(writer._condition(w, 0, "major", plan, 120.0, ROLES, {}))

    blend = condition(weights)
    assert np.allclose(blend, 0.7 * condition({"bossa_nova": 1.0}) + 0.3 * condition({"house": 1.0}), atol=1e-5)
    song = writer.generate(style="bossa_nova+house", bars=8, seed=4)
    assert song.params["styles"] == {"bossa_nova": 0.5, "house": 0.5}


def test_a_song_keeps_to_one_style_file_of_its_family(entry):
    """A family stands for its style files: a song plays one, in the song's meter when the family has one there,
    drawn by the seed in proportion to the training songs; each family of a blend brings its own."""
    writer = SongWriter.load(entry.card_path)
    song = writer.generate(style="swing", bars=8, seed=4)
    files = {f["id"]: f for f in writer.card["style_files"]}
    assert len(song.params["style_files"]) == 1 and files[next(iter(song.params["style_files"]))]["family"] == "swing"
    from tunesmith.families.song import summary_line

    assert f"grooves of MMA's {next(iter(song.params['style_files']))}" in summary_line(
        {**song.params, "sections": song.sections})
    writer.card = {**writer.card, "style_files": [
        {"id": "a", "family": "swing", "meter": "4/4", "songs": 1, "tempo": [90, 120, 150]},
        {"id": "b", "family": "swing", "meter": "3/4", "songs": 3, "tempo": [90, 120, 150]},
        {"id": "c", "family": "swing", "meter": "4/4", "songs": 3, "tempo": [100, 130, 160]},
        {"id": "d", "family": "house", "meter": "4/4", "songs": 2, "tempo": [120, 125, 130]},
        {"id": "e", "family": "swing", "meter": "4/4", "songs": 3, "tempo": [200, 220, 240]}]}

    def draws(meter: str, tempo: float = 120.0, seeds: int = 400) -> list[str]:
        plan = MeterPlan(asked=(int(meter[0]), int(meter[2])), model=(int(meter[0]), int(meter[2])),
                         conversion="native")
        return [next(iter(writer.style_files_for({"swing": 1.0}, plan, tempo, seed))) for seed in range(seeds)]

    at_120 = draws("4/4")
    assert set(at_120) <= {"a", "c", "e"} and 0.65 < at_120.count("c") / len(at_120) < 0.85
    assert at_120.count("e") <= 2  # a fast swing file is not drawn for a song at 120
    assert draws("4/4", 230.0).count("e") / 400 > 0.9  # ... but is for one at 230
    assert set(draws("6/8", seeds=60)) == {"a", "b", "c"}
    assert draws("4/4", seeds=6) == ["a", "c", "a", "c", "c", "c"]  # the seed's draw, in every process
    common = MeterPlan(asked=(4, 4), model=(4, 4), conversion="native")
    blend = writer.style_files_for({"swing": 0.7, "house": 0.3}, common, 120.0, 1)
    assert blend["d"] == 0.3 and sum(blend.values()) == pytest.approx(1.0)
    assert writer.style_files_for({"jazz": 1.0}, common, 120.0, 1) == {}  # a family without files: the family alone


def test_a_song_plays_a_style_file_whose_songs_have_the_band_asked(entry):
    """A file is drawn also by how well its training songs' bands suit the tracks asked (`band_fit`): a groove
    the model only ever heard with a full band is not the one it plays for drums and lead alone."""
    writer = SongWriter.load(entry.card_path)
    writer.card = {**writer.card, "style_files": [
        {"id": "full", "family": "funk", "meter": "4/4", "songs": 18, "tempo": [90, 110, 130],
         "bands": {"drums+bass+chords+pad+lead": 17, "drums+bass+chords+pad": 1}},
        {"id": "machine", "family": "funk", "meter": "4/4", "songs": 6, "tempo": [90, 110, 130],
         "bands": {"drums+lead": 6}},
        {"id": "unsaid", "family": "funk", "meter": "4/4", "songs": 6, "tempo": [90, 110, 130]}]}
    plan = MeterPlan(asked=(4, 4), model=(4, 4), conversion="native")

    def shares(tracks: tuple[str, ...]) -> Counter:
        drawn = Counter(next(iter(writer.style_files_for({"funk": 1.0}, plan, 110.0, seed, tracks=tracks)))
                        for seed in range(300))
        return Counter({k: n / 300 for k, n in drawn.items()})

    duo, band = shares(("drums", "lead")), shares(ROLES)
    assert duo["machine"] > 0.4 and duo["full"] < 0.1  # 6 songs with just this band beat 18 with another
    assert band["full"] > 0.6 and band["machine"] < 0.05
    assert 0.1 < duo["unsaid"] < 0.6 and 0.1 < band["unsaid"] < 0.4  # a card that does not say: as before
    assert band_fit(("drums", "lead"), {"drums+lead": 3}) == 1.0
    assert band_fit(ROLES, None) == 1.0 and band_fit(("pad",), {"drums": 2}) == 1e-3
    four, five = ("drums", "bass", "chords", "lead"), "drums+bass+chords+pad+lead"
    assert band_fit(four, {five: 1}) == pytest.approx(0.8 ** BAND_SHARPNESS)
    assert 20 * band_fit(four, {five: 20}) < 3 * band_fit(four, {"drums+bass+chords+lead": 3})  # 3 of the band win
    song = writer.generate(style="funk", bars=8, seed=2, tracks=["drums", "lead"])
    assert next(iter(song.params["style_files"])) in {"machine", "unsaid"}


def test_style_strength_guides_the_song(entry):
    writer = SongWriter.load(entry.card_path)
    plain = writer.generate(style="pop", bars=8, seed=3, style_strength=1.0)
    again = writer.generate(style="pop", bars=8, seed=3, style_strength=1.0)
    guided = writer.generate(style="pop", bars=8, seed=3, style_strength=3.0)
    assert plain.params["style_strength"] == 1.0 and guided.params["style_strength"] == 3.0
    assert np.array_equal(plain.tokens, again.tokens)
    assert not np.array_equal(plain.tokens, guided.tokens)
    with pytest.raises(ParameterError) as info:
        writer.generate(style="pop", bars=8, style_strength=0.5)
    assert info.value.field == "style_strength"


def test_the_plan():
    assert sum(s.bars for s in plan_sections(60, 0.5)) == 60
    names = [s.name for s in plan_sections(60, 0.5)]
    assert names == ["intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"]
    for bars in range(8, 160):
        spans = plan_sections(bars, 0.9)
        assert sum(s.bars for s in spans) == bars and spans[0].start_bar == 0
        assert all(a.start_bar + a.bars == b.start_bar for a, b in itertools.pairwise(spans))
    levels = {s.name: s.energy for s in plan_sections(60, 0.5)}
    assert levels["chorus"] == levels["verse"] + 1 and levels["intro"] == levels["verse"] - 1
    plan = song_plan(60, 0.5)
    assert plan.copy_from[28] == 12 and plan.chords_from[20] == 4  # chorus 2 replays chorus 1; verse 2 its chords


def test_styles_resolve_like_the_corpus_table(entry):
    for family in STYLE_FAMILIES:
        for name in (family.id, family.name, *family.aliases):
            assert resolve_style(name, entry.card["styles"]) == {resolve_family(name).id: 1.0}


@pytest.mark.parametrize(("explicit", "field", "words"), [
    ({"style": "bosa novva"}, "params.style", ["nearest: 'bossa_nova'", "swing", "house"]),
    ({"style": "house:0+pop"}, "params.style", ["positive"]),
    ({"tempo": 500}, "params.tempo", ["300"]),
    ({"length": 600}, "params.length", ["180"]),
    ({"length": 3, "tempo": 120}, "params.length", ["8 bars"]),
    ({"bars": 200, "tempo": 60}, "params.bars", ["180 s"]),
    ({"tracks": "drums,vocals"}, "params.tracks", ["drums", "lead"]),
    ({"meter": "7/8"}, "params.meter", ["4/4", "12/8"]),
    ({"loop": 64}, "params.loop", ["32"]),
    ({"chords": "Am | Hm7"}, "params.chords", ["Hm7"]),
    ({"instruments": {"bass": "kazoo"}}, "params.instruments.bass", ["kazoo"]),
    ({"instruments": {"drums": "drums_jazz"}, "tracks": ["bass"]}, "params.instruments", ["drums"]),
    ({"style_strength": 9}, "params.style_strength", ["4"]),
])
def test_bad_input_names_the_field(entry, explicit, field, words):
    with pytest.raises(ParameterError) as info:
        params = _resolve(entry, **explicit)
        make_work(entry, params, audio=False)
    message = str(info.value)
    assert all(w in message for w in words), message
    assert info.value.field.startswith(field), info.value.field


def test_distillation_is_judged_at_the_default_strength():
    from tunesmith.compose.sampling import STYLE_STRENGTH
    from tunesmith.train.song import DISTILL_EVAL_STRENGTH

    assert DISTILL_EVAL_STRENGTH == STYLE_STRENGTH


def test_file_balance_evens_out_how_often_each_style_file_is_drawn():
    """Songs are drawn in proportion to their length; ``file_balance`` divides that by the songs of their style
    file to a power: at 1 a file of one song is drawn as often as a file of nine (songs of equal length)."""
    from tunesmith.train.song_data import SongCorpus, SongExample

    def example(i: int, style_file: str) -> SongExample:
        return SongExample(id=str(i), split="train", family="swing", style_file=style_file, tonic=0, mode="major",
                           meter="4/4", tempo=120.0, steps=np.zeros((100, len(COLUMN)), dtype=np.int16),
                           tracks=np.ones(len(ROLES), dtype=np.float32), low=40, high=80)

    examples = [example(i, "big") for i in range(9)] + [example(9, "small")]

    def share_of_small(balance: float) -> float:
        weights = SongCorpus(examples, styles=["swing"], meters=["4/4"], file_balance=balance).draw_weights
        return float(weights[-1] / weights.sum())

    assert share_of_small(0.0) == pytest.approx(0.1)
    assert share_of_small(0.5) == pytest.approx(1 / (1 + 3))  # sqrt(9) songs' worth against one
    assert share_of_small(1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="file_balance"):
        SongCorpus(examples, styles=["swing"], meters=["4/4"], file_balance=1.5)


def test_file_balance_is_checked_before_a_run_starts(tmp_path, capsys):
    from tunesmith.cli import main

    assert main(["train", "song", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--file-balance", "2"]) == 2
    assert "--file-balance is 0..1" in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert main(["train", "song", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--file-balance", "0.5",
                 "--resume"]) == 2
    assert "--file-balance shapes a new run" in capsys.readouterr().err


@pytest.mark.parametrize(("style", "params", "said"), [
    ("polka", {"tempo": 120}, ["polka grooves were trained at 180-260 BPM;", "ask 240 BPM"]),  # counted in 2/4
    ("bebop", {"tempo": 240}, ["bebop grooves were trained at 120-150 BPM"]),
    ("samba", {"tempo": 110}, ["trained at 81-100, 162-230 BPM", "ask 220 BPM"]),  # between its files
    ("samba", {"tempo": 160, "meter": "12/8"}, ["160 BPM: the samba grooves were trained at 122-150, 243-345 BPM"]),
    # in the asked meter's beats, and no tempo past the most a song takes (320) to ask
    ("polka", {"tempo": 220}, None), ("rock", {"tempo": 120}, None), ("polka+rock", {}, None)])  # no tempo: no note
def test_a_tempo_no_style_file_was_trained_at_is_said(style, params, said):
    card = json.loads((Path(__file__).resolve().parents[1] / "weights" / "song.json").read_text())
    notes: list[str] = []
    explicit = {"style": style, **params}
    resolved = families.get("song").resolve(Resolving(model_id="song", card=card, explicit=explicit, from_prompt={},
                                                      notes=notes, seed=1))
    assert resolved["tempo"] == params.get("tempo", resolved["tempo"])  # taken as given
    assert notes == [] if said is None else (len(notes) == 1 and all(part in notes[0] for part in said)), notes
    assert not notes or ("ask" in notes[0]) == any("ask" in part for part in said)


@pytest.mark.parametrize(("style", "note"), [("zydeco", "style 'zydeco': played as Country (country)"),
                                             ("lo-fi", "style 'lo-fi': played as Hip hop (hip_hop)"),
                                             ("bossa nova", None), ("Bossa Nova", None), ("bossa_nova", None),
                                             ("bossa_nova+house", None)])
def test_a_style_asked_by_another_name_says_which_family_plays_it(style, note):
    card = json.loads((Path(__file__).resolve().parents[1] / "weights" / "song.json").read_text())
    notes: list[str] = []
    families.get("song").resolve(Resolving(model_id="song", card=card, explicit={"style": style}, from_prompt={},
                                           notes=notes, seed=1))
    assert notes == ([note] if note else [])
