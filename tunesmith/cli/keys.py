"""`tunesmith keys create|list|revoke`: API keys of the service (a secret is printed once; only its hash is kept)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunesmith.service.db import Database


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys",
                       description="Manage API keys of the service database (TUNESMITH_DATABASE_URL, or the one "
                                   "in --data-dir).")
    p.add_argument("--data-dir", type=Path, help="the server's data directory (default ./data-dir)")
    actions = p.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=type(p))
    actions.required = True
    create = actions.add_parser("create", help="create a key and print it once",
                                description="Create an API key. The key is printed once; only its hash is kept.")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--quota-seconds", type=float,
                        help="generated audio seconds per day (default: the server's daily_audio_seconds)")
    create.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    create.set_defaults(func=run_create)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    listing.set_defaults(func=run_list)
    revoke = actions.add_parser("revoke", help="refuse a key from now on (its works stay)",
                                description="Revoke an API key by its id (`tunesmith keys list`). Servers refuse it "
                                            "within 30 s (the time they trust a key once looked up); its works and "
                                            "usage stay in the records.")
    revoke.add_argument("id", type=int, help="the key's id")
    revoke.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    revoke.set_defaults(func=run_revoke)


def _database(args: argparse.Namespace) -> Database:
    from tunesmith.config import load_settings
    from tunesmith.service.db import Database

    settings = load_settings(data_dir=getattr(args, "data_dir", None))
    db = Database(settings.database_url or "")
    db.migrate()
    return db


def run_create(args: argparse.Namespace) -> int:
    from tunesmith.errors import ParameterError
    from tunesmith.service import crud

    name = args.name.strip()
    if not name or len(name) > 200:
        raise ParameterError(f"--name must be 1 to 200 characters, got {args.name!r}", field="name")
    if args.quota_seconds is not None and not args.quota_seconds >= 0:
        raise ParameterError(f"--quota-seconds must be 0 or more, got {args.quota_seconds}", field="quota_seconds")
    db = _database(args)
    try:
        with db.session() as session:
            key, secret = crud.create_api_key(session, name=name, quota_seconds=args.quota_seconds)
            key_id = key.id
    finally:
        db.close()
    print(secret)
    quota = f"{args.quota_seconds:g} s/day" if args.quota_seconds is not None else "the server's default quota"
    print(f"created key {key_id} {name!r} ({quota}); the key is shown only now: store it safely", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from tunesmith.service import crud

    db = _database(args)
    try:
        with db.session() as session:
            keys = crud.list_api_keys(session)
    finally:
        db.close()
    if not keys:
        print("no API keys; create one with: tunesmith keys create --name NAME")
    for key in keys:
        quota = f"{key.quota_seconds:g} s/day" if key.quota_seconds is not None else "default quota"
        revoked = f", revoked {key.revoked:%Y-%m-%d %H:%M} UTC" if key.revoked is not None else ""
        print(f"{key.id:4d}  {key.prefix}…  {key.name:30s} {quota:16s} created {key.created:%Y-%m-%d %H:%M} UTC"
              f"{revoked}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from tunesmith.errors import ParameterError
    from tunesmith.service import crud

    db = _database(args)
    try:
        with db.session() as session:
            key = crud.revoke_api_key(session, args.id)
            if key is None:
                raise ParameterError(f"no API key with id {args.id}; see tunesmith keys list", field="id")
            name, when = key.name, key.revoked
    finally:
        db.close()
    print(f"revoked key {args.id} {name!r} at {when:%Y-%m-%d %H:%M:%S} UTC; running servers refuse it within 30 s")
    return 0
