"""`tunesmith verify FILE`: is this a Tunesmith file, signed and unchanged, and does it carry the watermark?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.cli import remote


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check a file's signed provenance manifest and audio watermark",
        description="Check the signed provenance manifest (valid, tampered or unsigned) and look for the audio "
                    "watermark. Re-encoding keeps the watermark but drops the signature; the summary says which "
                    "survived. Trusts the key given by --public-key, else this machine's signing key "
                    "(--data-dir), else only checks the file against the key it carries.")
    p.add_argument("file", type=Path, help="an audio (WAV, FLAC, OGG, MP3) or MIDI file")
    p.add_argument("--public-key", help="the signer's public key: a PEM file, PEM text or raw base64 "
                                        "(e.g. from GET /v1/provenance/public-key)")
    p.add_argument("--data-dir", type=Path, help="trust this data directory's signing key (default ./data-dir)")
    p.add_argument("--json", action="store_true", help="print the whole verdict as JSON")
    remote.add_server_options(p)
    p.set_defaults(func=run_verify)


def trusted_key(public_key: str | None, data_dir: Path | None):  # -> Ed25519PublicKey | None
    """The key to trust: --public-key, else the data directory's key if one exists there, else None."""
    from tunesmith.provenance.signing import key_path, load_or_create_signing_key, load_public_key

    if public_key:
        candidate = Path(public_key)
        return load_public_key(candidate if candidate.is_file() else public_key)
    from tunesmith.config import load_settings

    directory = load_settings(data_dir=data_dir).data_dir
    if key_path(directory).is_file():
        return load_or_create_signing_key(directory).public_key()
    return None


def run_verify(args: argparse.Namespace) -> int:
    from tunesmith.provenance.verify import verify_file

    if remote.server_of(args):
        return remote.run_verify(args)
    verdict = verify_file(args.file, trusted_key(args.public_key, args.data_dir))
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2))
        return 0
    print(f"{verdict.path}: {verdict.summary}")
    print(f"  signature: {verdict.signature}" + (f" ({verdict.signature_reason})" if verdict.signature_reason else ""))
    mark = verdict.watermark.replace("_", " ")
    if verdict.watermark_score is not None:
        mark += f" (score {verdict.watermark_score:.1f})"
    print(f"  watermark: {mark}")
    if verdict.manifest:
        m = verdict.manifest
        print(f"  model {m.get('model_id')} {m.get('model_version')}, seed {m.get('seed')}, made {m.get('created')}, "
              f"tunesmith {m.get('tunesmith_version')}")
    return 0
