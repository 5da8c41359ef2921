"""Schemathesis hooks of tests/test_service_contract.py (loaded through SCHEMATHESIS_HOOKS).

The file of POST /v1/uploads, /v1/analyses and /v1/verifications is, two times out of three, a real file the
route reads (a valid seed of tunesmith.bench.hostile) or a broken one (truncated, mutated headers, MIDI events
with absurd lengths ...), instead of the random bytes the schema alone leads to: so the stateful phase gets
uploads and analyses to follow its links to, and the decoders get exercised through the API.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from tunesmith.bench.hostile import ROUTES, TAKES, seed_file, specimens

ROUTE_OF = {path: route for route, path in ROUTES.items()}
QUICK_ATTACKS = ("valid", "truncated", "mutated_header", "mutated_body", "wav_header", "flac_header", "midi_header",
                 "midi_events", "random_bytes", "wrong_type")  # each reads in well under a second


@schemathesis.hook
def flatmap_body(context, body):
    operation = context.operation
    route = ROUTE_OF.get(operation.path) if operation is not None and operation.method.upper() == "POST" else None
    if route is None or not isinstance(body, dict) or not isinstance(body.get("file"), str | bytes) \
            or not body["file"]:  # not a file route, or a negative case (no file, or an empty one): as it is
        return st.just(body)
    valid = st.sampled_from([seed_file(kind) for kind, routes in TAKES.items() if route in routes])
    hostile = specimens(QUICK_ATTACKS).map(lambda specimen: specimen.data)
    return st.one_of(st.just(body["file"]), valid, hostile).map(lambda data: {**body, "file": data})
