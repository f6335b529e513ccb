"""A hand-driven HTTP/1.1 client: send a request or part of its body, leave at will.

For what a well-behaved client library will not do: stop sending halfway
through a body, close the socket while the server still works on the answer,
or connect from another loopback address (Linux routes all of 127/8 to `lo`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from tests.integration.rest import EXECUTE


@dataclass
class RawRequest:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def post(
        cls,
        host: str,
        port: int,
        body: bytes,
        *,
        content_length: int | None = None,
        source: str | None = None,
    ) -> RawRequest:
        """POST `body` to `execute`, announcing `content_length` bytes (default: all of it)."""
        reader, writer = await asyncio.open_connection(
            host, port, local_addr=(source, 0) if source else None
        )
        head = (
            f"POST {EXECUTE} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\n"
            f"Content-Length: {len(body) if content_length is None else content_length}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        return cls(reader, writer)

    @classmethod
    async def post_json(
        cls, host: str, port: int, *, source: str | None = None, **body: Any
    ) -> RawRequest:
        return await cls.post(host, port, json.dumps(body).encode(), source=source)

    async def response(self, timeout: float) -> tuple[int, dict[str, Any]]:
        """The answer's status and JSON body; fails if none came within `timeout`."""
        async with asyncio.timeout(timeout):
            status_line = await self.reader.readline()
            headers = {}
            while (line := await self.reader.readline()) not in {b"\r\n", b""}:
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self._body(headers)
        return int(status_line.split()[1]), json.loads(body)

    async def _body(self, headers: dict[str, str]) -> bytes:
        """The body, whole: by its length, or chunk by chunk (a streamed answer)."""
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        body = b""
        while size := int((await self.reader.readline()).strip(), 16):
            body += await self.reader.readexactly(size)
            await self.reader.readline()  # the CRLF after each chunk
        await self.reader.readline()  # the CRLF after the last, empty chunk
        return body

    async def closed_by_server(self, timeout: float) -> bool:
        """Whether the server ends the connection within `timeout` (after its answer)."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
