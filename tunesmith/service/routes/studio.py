"""GET /: the web studio, a plain HTML/CSS/JS page (no build step) served from ``tunesmith/service/web``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from tunesmith.service.errors import NotFound

router = APIRouter(include_in_schema=False)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
FILES = {"studio.css": "text/css", "studio.js": "text/javascript", "favicon.svg": "image/svg+xml",
         "midi.js": "text/javascript", "track-rolls.js": "text/javascript", "song-panel.js": "text/javascript",
         "take.js": "text/javascript"}
NO_CACHE = {"Cache-Control": "no-cache"}  # a new version of the server serves its new page at once


@router.get("/")
def studio() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=NO_CACHE)


@router.get("/studio/{name}")
def studio_file(name: str) -> FileResponse:
    if name not in FILES:
        raise NotFound(f"no studio file {name!r}", field="name")
    return FileResponse(WEB_DIR / name, media_type=FILES[name], headers=NO_CACHE)
