"""An httpx2 transport over litestar's test client: lets httpx2-based clients (authlib's OAuth client, the reference
phone client) reach an application that the test client runs in its own event loop and thread."""

from __future__ import annotations

from typing import Any

import httpx2
from litestar.testing import AsyncTestClient


class TestClientTransport(httpx2.AsyncBaseTransport):
    __test__ = False  # not a test class, whatever its name says

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._client.request(
            request.method,
            str(request.url),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            content=await request.aread(),
            follow_redirects=False,
        )
        return httpx2.Response(response.status_code, headers=response.headers.raw, content=response.content)
