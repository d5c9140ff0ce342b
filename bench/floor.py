"""The FLOOR: a bare Starlette app returning the same bytes as a Santinel read.

It runs under the same uvicorn settings as `santinel serve` (one worker, uvloop + httptools as
picked by uvicorn's `auto`, no server header, date header on, no logging), so the difference
between it and Santinel is exactly what Santinel does per request: routing, content
negotiation, the request model, the database round trip, validation and the request log.

    python -m bench.floor --port 8099 --body-file patient.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MEDIA = "application/fhir+json; charset=utf-8"


def create_floor_app(body: bytes) -> Starlette:
    """GET /fhir/Patient/{id} → 200 with `body`; POST /fhir/Patient → 201 with `body`."""

    async def read(_request: Request) -> Response:
        return Response(body, media_type=MEDIA)

    async def create(request: Request) -> Response:
        await request.body()  # consume the upload like a real create does
        return Response(body, status_code=201, media_type=MEDIA)

    async def ready(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/readyz", ready, methods=["GET"]),
            Route("/fhir/Patient/{id}", read, methods=["GET"]),
            Route("/fhir/Patient", create, methods=["POST"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    args = parser.parse_args()
    # The same keyword arguments as `santinel serve` (src/santinel/cli/main.py).
    uvicorn.run(
        create_floor_app(args.body_file.read_bytes()),
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        server_header=False,
        date_header=True,
    )


if __name__ == "__main__":
    main()
