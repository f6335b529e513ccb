"""Client identity: a class behind one address is forty clients, one browser is one.

Each browser gets its own signed cookie from the playground page; the caps
count per cookie. Without one a client is its address, and a forwarded
address counts only from a trusted proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from ce_ws.config import CapacitySettings
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient

CLASS_SIZE = 40
PER_CLIENT = CapacitySettings().max_runs_per_client
WAITING = "echo up; read line"
START_TIMEOUT_S = 120  # forty containers at once on a small, shared host


@contextlib.asynccontextmanager
async def browser(
    client: TestClient[Any, Any], *, cookies: bool = True, headers: dict[str, str] | None = None
) -> AsyncIterator[TermClient]:
    """One browser: it loads the page (its cookie comes with it), then opens the socket."""
    jar: aiohttp.abc.AbstractCookieJar = (
        aiohttp.CookieJar(unsafe=True) if cookies else aiohttp.DummyCookieJar()
    )
    async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as session:
        async with session.get(client.make_url("/")) as page:
            assert page.status == 200
        async with session.ws_connect(client.make_url("/api/v1/ws")) as ws:
            term = TermClient(ws)
            term.hello = await term.next_message("hello")
            yield term


async def start_all(terms: list[TermClient]) -> list[dict[str, Any]]:
    """Send every `run` at once; the first answer of each (started or queued)."""

    async def start(term: TermClient) -> dict[str, Any]:
        await term.send(type="run", language="bash", code=WAITING)
        return await term.next_message("started", "queued", "error", timeout=START_TIMEOUT_S)

    return await asyncio.gather(*(start(term) for term in terms))


async def end_all(terms: list[TermClient], answers: list[dict[str, Any]]) -> None:
    """Cancel the queued runs first (they never started: no `exit`), then end the others."""
    queued = [
        term for term, answer in zip(terms, answers, strict=True) if answer["type"] == "queued"
    ]
    for term in queued:
        await term.send(type="kill")

    async def end(term: TermClient) -> None:
        await term.send(type="kill")
        await term.next_message("exit", timeout=START_TIMEOUT_S)

    await asyncio.gather(*(end(term) for term in terms if term not in queued))


async def test_forty_browsers_behind_one_address_all_run_at_once(make_client: MakeClient) -> None:
    # Per-client caps as by default; the server has room for the whole class.
    client = await make_client(capacity={"max_runs": CLASS_SIZE})
    async with contextlib.AsyncExitStack() as stack:
        terms = [await stack.enter_async_context(browser(client)) for _ in range(CLASS_SIZE)]
        answers = await start_all(terms)
        await end_all(terms, answers)
        assert [answer["type"] for answer in answers] == ["started"] * CLASS_SIZE, answers


async def test_one_browser_alone_still_meets_its_own_cap(make_client: MakeClient) -> None:
    client = await make_client()
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as session,
        session.get(client.make_url("/")) as page,
    ):
        cookie = page.cookies["ce_client"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    same_browser = {"Cookie": f"ce_client={cookie.value}"}
    async with contextlib.AsyncExitStack() as stack:
        terms = [
            await stack.enter_async_context(browser(client, cookies=False, headers=same_browser))
            for _ in range(PER_CLIENT + 1)
        ]
        answers = await start_all(terms)
        await end_all(terms, answers)
        kinds = sorted(answer["type"] for answer in answers)
        assert kinds == ["queued"] + ["started"] * PER_CLIENT, answers


async def test_a_forged_cookie_counts_as_the_address(make_client: MakeClient) -> None:
    client = await make_client()
    async with contextlib.AsyncExitStack() as stack:
        terms = [
            await stack.enter_async_context(
                browser(client, cookies=False, headers={"Cookie": f"ce_client=v1.{n:032x}.00"})
            )
            for n in range(PER_CLIENT + 1)
        ]
        answers = await start_all(terms)
        await end_all(terms, answers)
        kinds = sorted(answer["type"] for answer in answers)
        assert kinds == ["queued"] + ["started"] * PER_CLIENT


async def forwarded_clients(client: TestClient[Any, Any]) -> list[str]:
    """Nine cookie-less clients, each claiming another address: how far do they get?"""
    async with contextlib.AsyncExitStack() as stack:
        terms = [
            await stack.enter_async_context(
                browser(client, cookies=False, headers={"X-Forwarded-For": f"203.0.113.{n}"})
            )
            for n in range(1, PER_CLIENT + 2)
        ]
        answers = await start_all(terms)
        await end_all(terms, answers)
    return sorted(answer["type"] for answer in answers)


async def test_a_forwarded_address_from_an_untrusted_peer_changes_nothing(
    make_client: MakeClient,
) -> None:
    client = await make_client()  # no trusted proxies: the header is anyone's to write
    assert await forwarded_clients(client) == ["queued"] + ["started"] * PER_CLIENT


async def test_a_forwarded_address_from_a_trusted_proxy_is_the_client(
    make_client: MakeClient,
) -> None:
    client = await make_client(trusted_proxies=["127.0.0.0/8", "::1"])
    assert await forwarded_clients(client) == ["started"] * (PER_CLIENT + 1)
