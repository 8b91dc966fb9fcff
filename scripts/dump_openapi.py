"""Writes the API's OpenAPI document, built from the application itself (no server, no database), for the console."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from api.app import create_app
from api.openapi import document_problems
from api.security import PUBLIC_PATHS
from core.settings import Settings


def openapi_document() -> str:
    app = create_app(Settings())
    # The lifespan adds the problem responses at start; without a server, add them here the same way.
    document_problems(app, PUBLIC_PATHS)
    # Sorted keys: the same application always gives the same bytes, so `make test` can diff the committed copy.
    encoded = msgspec.json.encode(app.openapi_schema.to_schema(), order="sorted")
    return msgspec.json.format(encoded, indent=2).decode() + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python scripts/dump_openapi.py OUTPUT.json", file=sys.stderr)
        return 2
    Path(argv[1]).write_text(openapi_document(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
