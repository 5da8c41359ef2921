"""`tunesmith generate|analyze|verify ... --server URL --api-key KEY` and `tunesmith models --server URL`: the CLI
on a remote server.

The work runs on a Tunesmith server through the SDK (:mod:`tunesmith.client`): the job's progress events drive
a progress bar, and the output is downloaded in the format of ``-o``'s suffix. ``TUNESMITH_SERVER`` and
``TUNESMITH_API_KEY`` stand in for the options. Errors of the server come back as one line, e.g.
``tunesmith: error: 401 unauthorized: unknown API key`` (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from tunesmith.errors import ParameterError
from tunesmith.progress import FractionBar

if TYPE_CHECKING:
    from tunesmith.client import Client

SERVER_ENV = "TUNESMITH_SERVER"
API_KEY_ENV = "TUNESMITH_API_KEY"
SUFFIXES = {".mid": "mid", ".midi": "mid", ".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".ogg": "ogg"}
# generate options sent as model parameters when they are given (the server checks them and names a bad one)
PARAM_OPTIONS = ("key", "meter", "bars", "tempo", "temperature", "top_p", "instrument", "pitch", "velocity",
                 "duration", "morph_to", "morph", "style", "length", "loop", "mode", "track")
LOCAL_ONLY = {"checkpoint": "--checkpoint (a server runs its own models)"}


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Add --server and --api-key."""
    group = parser.add_argument_group("remote server")
    group.add_argument("--server", metavar="URL",
                       help=f"run on a Tunesmith server instead of locally (default ${SERVER_ENV})")
    group.add_argument("--api-key", metavar="KEY", help=f"API key of that server (default ${API_KEY_ENV})")


def server_of(args: argparse.Namespace) -> str | None:
    """The server URL the command should use: --server, else $TUNESMITH_SERVER, else None (run locally)."""
    server = getattr(args, "server", None) or os.environ.get(SERVER_ENV, "").strip()
    return server or None


def _client(args: argparse.Namespace, *, need_key: bool) -> Client:
    from tunesmith.client import Client

    api_key = getattr(args, "api_key", None) or os.environ.get(API_KEY_ENV, "").strip() or None
    if need_key and not api_key:
        raise ParameterError(f"--server needs --api-key KEY (or ${API_KEY_ENV}); create one on the server with "
                             "`tunesmith keys create --name NAME`", field="api_key")
    return Client(server_of(args) or "", api_key)


def run_generate(args: argparse.Namespace) -> int:
    """Generate on the server, follow its progress, download -o in the format of its suffix."""
    fmt = SUFFIXES.get(args.output.suffix.lower())
    if fmt is None:
        raise ParameterError(f"cannot write {args.output.name!r}: use .mid, .wav, .flac, .mp3 or .ogg", field="output")
    for name, what in LOCAL_ONLY.items():
        if getattr(args, name, None) is not None:
            raise ParameterError(f"{what} cannot be used with --server", field=name)
    if getattr(args, "sr", 44100) != 44100:
        raise ParameterError("--sr: a server renders audio at 44100 Hz", field="sr")
    if args.harmonize and args.input is None:
        raise ParameterError("--harmonize needs --input MELODY", field="harmonize")
    with _client(args, need_key=True) as client:
        cards = client.models()
        card = next((c for c in cards if c.get("id") == args.model), None)
        if card is None:
            offered = ", ".join(sorted(str(c.get("id")) for c in cards)) or "none"
            raise ParameterError(f"the server at {client.url} has no model {args.model!r}; it offers: {offered}",
                                 field="model")
        # the neural instrument (audio only, or playing an input) is reported like local generation
        neural = "mid" not in card.get("formats", []) or bool(card.get("needs_input"))
        seed = args.seed
        if neural:  # the checks and defaults of local `generate notes|perform`
            _check_neural(args, needs_input=bool(card.get("needs_input")))
            seed = 0 if seed is None else seed
        params = {name: value for name in PARAM_OPTIONS if (value := getattr(args, name, None)) is not None}
        with FractionBar(f"{args.model} on {client.url}") as bar:
            wanted = [fmt] + (["mid"] if getattr(args, "midi", None) else []) + \
                (["stems"] if getattr(args, "stems", None) else [])
            work = client.generate(args.model, prompt=getattr(args, "prompt", None), seed=seed,
                                   formats=list(dict.fromkeys(wanted)), input=args.input,
                                   harmonize=args.harmonize, progress=bar.update,
                                   **params)
        client.download(work, args.output, format=fmt)
        if getattr(args, "midi", None) is not None:
            client.download(work, args.midi, format="mid")
        if getattr(args, "stems", None) is not None:
            client.download_stems(work, args.stems)
        if getattr(args, "piano_roll", None) and not neural:
            link = work.links.get("pianoroll")
            if not link:
                raise ParameterError(f"the server at {client.url} does not draw piano rolls", field="piano_roll")
            client.fetch(link, args.piano_roll)
    _report(args, work, client.url, card)
    return 0


def _check_neural(args: argparse.Namespace, *, needs_input: bool) -> None:
    """`notes` and `perform` on a server take what they take locally: audio out, and perform a score in."""
    AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")

    if args.output.suffix.lower() not in AUDIO_SUFFIXES:
        raise ParameterError(f"cannot write {args.output.name!r}: {args.model} makes audio "
                             "(.wav, .flac, .mp3 or .ogg)", field="output")
    if needs_input and args.input is None:
        raise ParameterError("generate perform needs --input FILE.mid", field="input")
    if args.harmonize:
        raise ParameterError(f"--harmonize is for the composers, not {args.model}", field="harmonize")


def run_analyze(args: argparse.Namespace) -> dict[str, Any]:
    """`tunesmith analyze FILE --server URL`: the server's analysis of FILE (a long file is waited for)."""
    if getattr(args, "checkpoint", "analyzer") != "analyzer":
        raise ParameterError("--checkpoint cannot be used with --server (a server runs its own analyzer)",
                             field="checkpoint")
    if getattr(args, "mixtures", None):
        raise ParameterError("--mixtures cannot be used with --server (a server runs its own analyzer)",
                             field="mixtures")
    from tunesmith.client import ClientError

    with _client(args, need_key=True) as client:
        record = client.analyze(args.file)
    if record.get("status") != "succeeded":
        error = record.get("error") or {}
        raise ClientError(f"analysis {record.get('id')} on {client.url} {record.get('status')}: "
                          f"{error.get('code')}: {error.get('message')}")
    return {**record["result"], "file": str(args.file), "server": client.url, "analysis_id": record["id"]}


def run_verify(args: argparse.Namespace) -> int:
    """`tunesmith verify FILE --server URL`: the server's verdict on FILE (checked against the server's key)."""
    if getattr(args, "public_key", None):
        raise ParameterError("--public-key cannot be used with --server (the server trusts its own key)",
                             field="public_key")
    with _client(args, need_key=True) as client:
        verdict = client.verify(args.file)
    verdict = {**verdict, "file": str(args.file), "server": client.url}
    if args.json:
        print(json.dumps(verdict, indent=2))
        return 0
    print(f"{args.file}: {verdict['summary']}")
    reason = verdict.get("signature_reason")
    signer = {True: " - signed by this server's key", False: f" - signed by another key ({verdict.get('key_id')})"}
    print(f"  signature: {verdict['signature']}" + (f" ({reason})" if reason else "")
          + (signer.get(verdict.get("key_trusted"), "") if verdict["signature"] == "valid" else ""))
    mark = str(verdict["watermark"]).replace("_", " ")
    if verdict.get("watermark_score") is not None:
        mark += f" (score {verdict['watermark_score']:.1f})"
    print(f"  watermark: {mark}")
    if verdict.get("manifest"):
        m = verdict["manifest"]
        print(f"  model {m.get('model_id')} {m.get('model_version')}, seed {m.get('seed')}, made {m.get('created')}, "
              f"tunesmith {m.get('tunesmith_version')}")
    return 0


def _report(args: argparse.Namespace, work: Any, server: str, card: dict[str, Any]) -> None:
    """What local `generate` prints (its one line, or its JSON report), with the job and the server. The line
    comes from the model's family when this install knows it, else from the result's plain values."""
    from tunesmith import families
    from tunesmith.cli.generate import summary
    from tunesmith.generation.prompts import reading_lines

    result = {**(work.result or {}), "seconds_of_audio": work.audio_seconds}
    originality = work.raw.get("originality")
    if args.json:
        print(json.dumps({"output": str(args.output), "model": work.model, **result, "server": server,
                          "id": work.id, "params": work.params, "result": work.result,
                          "audio_seconds": work.audio_seconds, "interpretation": work.interpretation,
                          "originality": originality, "provenance": work.raw.get("provenance")}, indent=2))
        return
    family = next((f for f in families.families() if f.name == card.get("family")), None)
    if family is not None:
        line = summary(args.output, family, result, originality)
    else:
        plain = ", ".join(f"{k} {v}" for k, v in result.items() if isinstance(v, str | int | float))
        line = f"wrote {args.output}: {plain}"
    head, _, rest = line.partition("\n")
    notes = reading_lines(work.interpretation)
    print(f"{head} (job {work.id} on {server})" + (f"\n{rest}" if rest else "") + "".join(f"\n  {n}" for n in notes))


def run_models(args: argparse.Namespace) -> int:
    """`tunesmith models --server URL`: the server's model cards."""
    with _client(args, need_key=False) as client:
        cards = client.models()
    return print_models(cards, args, where=f"on the server at {client.url}")


def print_models(cards: list[dict[str, Any]], args: argparse.Namespace, *, where: str) -> int:
    """Print model cards (as GET /v1/models gives them) as JSON or as lines: id, version, kind, parameters."""
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print(f"no models {where}")
    for card in cards:
        data = card.get("training_data") or {}
        licences = "; ".join(f"{n}x {lic}" for lic, n in (data.get("licences") or {}).items())
        count = card.get("parameter_count")
        print(f"{card['id']:10s} v{card.get('version', '?'):7s} {card.get('architecture') or '':12s} "
              f"{f'{count:,}' if isinstance(count, int) else '?':>10s} params  {card.get('description', '')}")
        print(f"{'':10s} trained on {data.get('kind') or '?'}: {licences}")
        players: dict[str, list[str]] = {}
        for instrument, model in (card.get("played_by") or {}).items():
            players.setdefault(model, []).append(instrument)
        if len(players) > 1:  # a model made of several cards: which plays what
            print(f"{'':10s} played by: " + "; ".join(
                f"{model} ({', '.join(names) if len(names) <= 3 else f'{len(names)} instruments'})"
                for model, names in players.items()))
        ranges = ", ".join(_describe(name, spec) for name, spec in (card.get("params") or {}).items())
        if ranges:
            print(f"{'':10s} params: {ranges}")
    return 0


def _describe(name: str, spec: dict[str, Any]) -> str:
    if "minimum" in spec and "maximum" in spec:
        return f"{name} {_number(spec['minimum'])}-{_number(spec['maximum'])}"
    if "enum" in spec:
        return f"{name} ({len(spec['enum'])} choices)"
    return name


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
