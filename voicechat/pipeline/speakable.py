"""What a TTS engine should say for a piece of Markdown-ish LLM text, and whether there is
anything to say at all. No I/O; used by the chunker on each chunk and by the TTS backends to
refuse text with nothing speakable."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["has_speech", "sanitize", "speakable"]

_ZERO_WIDTH = re.compile("[\u200b\u2060\ufeff]")
_SPACE_LIKE = re.compile(r"[^\S\n]|[\x00-\x08\x0e-\x1f\x7f]")
_FENCED_BLOCK = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?(?:\n[ \t]*\1[ \t]*(?=\n|\Z)|\Z)", re.M | re.S)
_LINE_MARKUP = re.compile(r"^\s*(?:>\s*)*(?:#{1,6}(?=\s|$)|[-*+•](?=\s)|\d{1,2}[.)](?=\s|$))?")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_URL = re.compile(r"<?(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>()\[\]{}\"']+>?", re.I)
_EMPHASIS = re.compile(r"(?<!\w)[*_]+|[*_]+(?!\w)|~{2,}|`")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff"
    "\ufe0e\ufe0f\u20e3\u200d\u3030\u303d\u3297\u3299\U000e0000-\U000e007f]"
)
_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\w) +(?=[.,!?;:…](?!\w))")  # not before ".gitconfig"
_ALNUM = re.compile(r"[^\W_]")
_EMPTY_CELLS = re.compile(r",(?:\s*,)+")


def has_speech(text: str) -> bool:
    """True when `text` holds a letter or digit of any script: something a TTS can pronounce."""
    return _ALNUM.search(text) is not None


def speakable(text: str) -> str:
    """What a TTS engine should say for one complete piece of Markdown-ish text ("" if nothing).

    Drops fenced code blocks, line markup (headings, quotes, bullets, list numbers), emphasis
    and code markers (an underscore inside a word, as in snake_case, stays), link and image
    targets (the label stays), emoji and control characters; a bare URL becomes its host name.
    Table rows become their cells separated by commas. Everything else, "&" and "<" included, is
    left for the TTS layer to escape.
    """
    text = _FENCED_BLOCK.sub(" ", sanitize(text))
    text = "\n".join(_speakable_line(line) for line in text.split("\n"))
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(_url_host, text)
    text = _EMPHASIS.sub("", text).replace("|", " ")
    text = " ".join(_EMOJI.sub("", text).split())
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    return text if has_speech(text) else ""


def sanitize(text: str) -> str:
    """Control characters and exotic spaces become spaces; zero-width characters go."""
    text = _ZERO_WIDTH.sub("", text.replace("\r", "\n"))
    return _SPACE_LIKE.sub(" ", text)


def _speakable_line(line: str) -> str:
    line = _LINE_MARKUP.sub("", line, count=1)
    if not line.startswith("|"):
        return line
    # A comma per pipe keeps the row no longer than it was (max_chars holds after cleanup).
    cells = line.strip().strip("|").replace("|", ",")
    return _EMPTY_CELLS.sub(",", cells).strip(" ,")


def _url_host(found: re.Match[str]) -> str:
    url = found.group().strip("<>")
    tail = len(url) - len(url.rstrip(".,;:!?"))
    url, trailing = url[: len(url) - tail], url[len(url) - tail :]
    if "://" not in url:
        url = "http://" + url
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") + trailing
