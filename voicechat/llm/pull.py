"""``voicechat pull``: download a model file once, resumably, and use it only once its SHA-256
matches.

The bytes go to ``NAME.gguf.part`` next to the final file. A broken connection is retried from
where it broke with an HTTP ``Range`` request (as is a ``.part`` left by an earlier pull); a
server that answers a range with the whole file (200) is read from the start again. When the
last byte is in, the SHA-256 of the whole file is compared with the pinned one: on a match the
file is renamed to ``NAME.gguf`` (only then does ``--llm local`` see it); on a mismatch the
partial file is deleted and the pull fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from voicechat.errors import VoicechatError
from voicechat.llm.models import PULLED_SUFFIX

log = logging.getLogger("voicechat.llm.pull")

CHUNK = 1 << 20
READ_TIMEOUT = 60.0  # seconds without a byte before the connection counts as broken

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


class PullFailed(VoicechatError):
    """The model could not be downloaded, or what came was not the pinned file."""


@dataclass(frozen=True, slots=True)
class PullTarget:
    name: str
    url: str
    sha256: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise PullFailed(f"{self.name}: the SHA-256 must be 64 hex digits")


def _size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _total_of(response: aiohttp.ClientResponse, start: int) -> int | None:
    if response.status == 206:
        found = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if found is None or int(found.group(1)) != start:
            raise PullFailed(f"the server answered a range from {start} with another range")
        return None if found.group(2) == "*" else int(found.group(2))
    length = response.content_length
    return length if length is None else start + length


async def _fetch_once(
    http: aiohttp.ClientSession, target: PullTarget, part: Path, progress: Progress
) -> None:
    """Append what the server sends to ``part`` (from its current size); raises aiohttp's or
    the OS's errors when the connection breaks."""
    start = await asyncio.to_thread(_size_of, part)
    headers = {"Range": f"bytes={start}-"} if start else {}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=READ_TIMEOUT)
    async with http.get(target.url, headers=headers, timeout=timeout) as response:
        if response.status == 416 and start:
            return  # the partial file is already whole: the checksum decides
        if response.status == 200 and start:
            log.info("%s: the server ignored the range; starting again", target.name)
            start = 0
        elif response.status not in (200, 206):
            raise PullFailed(f"{target.url}: HTTP {response.status} {response.reason}")
        total = _total_of(response, start)
        with part.open("r+b" if start else "wb") as file:
            file.seek(start)
            file.truncate()
            done = start
            progress(done, total)
            async for block in response.content.iter_chunked(CHUNK):
                file.write(block)
                done += len(block)
                progress(done, total)
        if total is not None and done < total:
            raise aiohttp.ClientPayloadError(f"the body ended at {done} of {total} bytes")


async def pull(
    target: PullTarget,
    *,
    models_dir: Path,
    progress: Progress = lambda done, total: None,
    retries: int = 5,
    retry_delay: float = 1.0,
    http: aiohttp.ClientSession | None = None,
) -> Path:
    """Download ``target`` into ``models_dir`` and return its path once its checksum matched.
    A model already pulled is returned as it is."""
    await asyncio.to_thread(models_dir.mkdir, parents=True, exist_ok=True)
    final = models_dir / f"{target.name}{PULLED_SUFFIX}"
    if await asyncio.to_thread(final.exists):
        return final
    part = final.with_name(final.name + ".part")
    session = http or aiohttp.ClientSession()
    try:
        for attempt in range(retries + 1):
            try:
                await _fetch_once(session, target, part, progress)
                break
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
                if attempt == retries:
                    kept = _size_of(part)
                    raise PullFailed(
                        f"{target.url}: the download broke {retries + 1} times ({exc}); "
                        f"run the pull again to resume from {kept} bytes"
                    ) from exc
                log.info("%s: the download broke (%s); resuming", target.name, exc)
                await asyncio.sleep(retry_delay * (attempt + 1))
    finally:
        if http is None:
            await session.close()
    digest = await asyncio.to_thread(sha256_of, part)
    if digest != target.sha256:
        await asyncio.to_thread(part.unlink)
        raise PullFailed(
            f"{target.name}: SHA-256 {digest} is not the pinned {target.sha256}; "
            "the file was deleted"
        )
    await asyncio.to_thread(os.replace, part, final)
    return final
