"""What an ``openai`` SDK error means, in words a person understands (shared by the LLM and
the TTS backend that talk to OpenAI-compatible endpoints)."""

from __future__ import annotations

import openai


def describe_openai_error(exc: BaseException, *, endpoint: str) -> str:
    """One sentence about ``exc``; ``endpoint`` names what was called ("LLM endpoint")."""
    if isinstance(exc, openai.AuthenticationError):
        return f"the {endpoint} refused the API key (401); check VOICECHAT_OPENAI_API_KEY"
    if isinstance(exc, openai.RateLimitError):
        return f"the {endpoint} is rate limiting us (429); try again shortly"
    if isinstance(exc, openai.NotFoundError):
        return f"the {endpoint} does not know this model or path (404); check the model name"
    if isinstance(exc, openai.APIStatusError):
        return f"the {endpoint} answered with HTTP {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return f"the {endpoint} timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the {endpoint} (connection failed)"
    return f"the {endpoint}'s stream broke: {type(exc).__name__}"
