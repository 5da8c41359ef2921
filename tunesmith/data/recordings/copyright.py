"""Debian machine-readable copyright files (DEP-5): which licence and copyright holder cover a file."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

DOC_DIR = Path("/usr/share/doc")


@dataclass(frozen=True)
class Stanza:
    """One ``Files:`` paragraph: its patterns, copyright holders and licence name."""

    patterns: tuple[str, ...]
    copyright: str
    licence: str


def read_copyright(package: str, *, doc_dir: Path = DOC_DIR) -> list[Stanza]:
    """The ``Files:`` paragraphs of a package's copyright file (empty when it has none or is not DEP-5)."""
    path = doc_dir / package / "copyright"
    if not path.is_file():
        return []
    stanzas = []
    for paragraph in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = _fields(paragraph)
        if "files" in fields and "license" in fields:
            stanzas.append(Stanza(tuple(fields["files"].split()), " ".join(fields.get("copyright", "").split()),
                                  fields["license"].splitlines()[0].strip()))
    return stanzas


def licence_of(stanzas: list[Stanza], name: str) -> Stanza | None:
    """The paragraph that covers ``name`` (the last match wins, as DEP-5 says), or None."""
    found = None
    for stanza in stanzas:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in stanza.patterns):
            found = stanza
    return found


def _fields(paragraph: str) -> dict[str, str]:
    """Field name (lower case) -> value, continuation lines joined with newlines."""
    fields: dict[str, str] = {}
    key = None
    for line in paragraph.splitlines():
        if line[:1] in (" ", "\t") and key is not None:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields
