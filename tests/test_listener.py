"""Issue 13, item 10, through `voicechat serve`: slow headers time out, one address holds at most
its connection cap, and a full descriptor table is logged once, not once per retried accept."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import aiohttp

from tests.conftest import free_port, start_serve


async def trickle_headers(port: int, every: float = 0.2) -> float:
    """Send a request's header lines slowly and never end them; the seconds until the server
    closed the connection."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = loop.time()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        for line in range(1000):
            writer.write(b"X-Slow-%d: yes\r\n" % line)
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), every) == b"":
                    break
    except ConnectionError:
        pass
    finally:
        writer.close()
    return loop.time() - opened


async def health(port: int) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as r,
    ):
        return r.status


async def stop(server: asyncio.subprocess.Process) -> None:
    if server.returncode is None:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 10)


async def test_slow_headers_are_closed_after_the_header_timeout() -> None:
    port = free_port()
    server = await start_serve(port, "--header-timeout", "1")
    try:
        tricklers = [asyncio.create_task(trickle_headers(port)) for _ in range(20)]
        assert await health(port) == 200  # answered while they trickle
        held = await asyncio.wait_for(asyncio.gather(*tricklers), 10)
        # aiohttp's own default holds them 75 s; each is cut about a second in.
        assert all(0.9 <= seconds < 5 for seconds in held), held
    finally:
        await stop(server)


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout() -> None:
    port = free_port()
    server = await start_serve(port, "--header-timeout", "1")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await stop(server)


async def test_a_slow_body_is_answered_408_after_the_header_timeout() -> None:
    port = free_port()
    server = await start_serve(port, "--header-timeout", "1")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/speak HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert status_line.startswith(b"HTTP/1.1 408"), status_line
        writer.close()
        assert await health(port) == 200  # its seat was given back
    finally:
        await stop(server)


async def test_one_address_holds_at_most_its_connection_cap() -> None:
    port = free_port()
    server = await start_serve(port, "--max-connections-per-ip", "3")
    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            refused = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            refused = b""
        assert refused == b""  # closed at once, nothing served
        writer.close()
        for _, held_writer in held[:1]:
            held_writer.close()
            await held_writer.wait_closed()

        async def a_seat_is_free() -> None:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    if await health(port) == 200:
                        return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(a_seat_is_free(), 5)
        for _, held_writer in held[1:]:
            held_writer.close()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as metrics,
        ):
            text = await metrics.text()
        assert 'voicechat_connections_refused_total{reason="connections"}' in text
        line = next(x for x in text.splitlines() if 'reason="connections"}' in x)
        assert float(line.split()[-1]) >= 1
    finally:
        await stop(server)


async def test_a_full_descriptor_table_is_logged_once_an_interval_and_the_server_recovers() -> None:
    port = free_port()
    server = await start_serve(
        port,
        "--max-connections-per-ip",
        "0",
        "--header-timeout",
        "2",
        stderr=True,
        max_open_files=80,
    )
    assert server.stderr is not None
    log = bytearray()

    async def read_log() -> None:
        assert server.stderr is not None
        while chunk := await server.stderr.read(65536):
            log.extend(chunk)

    reading = asyncio.create_task(read_log())
    try:
        tricklers = [asyncio.create_task(trickle_headers(port, every=0.3)) for _ in range(120)]
        await asyncio.wait_for(asyncio.gather(*tricklers, return_exceptions=True), 15)

        async def recovered() -> None:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    if await health(port) == 200:
                        return
                await asyncio.sleep(0.1)

        await asyncio.wait_for(recovered(), 10)
    finally:
        await stop(server)
        await asyncio.wait_for(reading, 10)
    text = log.decode(errors="replace")
    # Without the rate limit asyncio logs every retried accept: thousands of tracebacks a second.
    assert 1 <= text.count("out of system resource") <= 2, text[-2000:]
    assert len(log) < 20_000
