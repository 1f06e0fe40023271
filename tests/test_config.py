"""Settings from flags and VOICECHAT_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicechat.cli import build_parser
from voicechat.config import Settings, load_settings
from voicechat.errors import ConfigError


def test_defaults_need_no_key_and_use_replay_and_the_edge_piper_chain() -> None:
    settings = load_settings(environ={})
    assert (settings.host, settings.port) == ("127.0.0.1", 8765)
    assert settings.llm_backend == "replay" and settings.tts == "edge,piper"


def test_environment_variables_set_every_field() -> None:
    settings = load_settings(
        environ={
            "VOICECHAT_PORT": "9001",
            "VOICECHAT_LOOKAHEAD": "4",
            "VOICECHAT_REPLAY_SPEED": "2.5",
            "VOICECHAT_WEB_DIR": "/tmp/web",
            "VOICECHAT_OPENAI_API_KEY": "sk-test",
        }
    )
    assert settings.port == 9001 and settings.lookahead == 4 and settings.replay_speed == 2.5
    assert settings.web_dir == Path("/tmp/web")
    assert settings.llm_backend == "openai"


def test_openai_api_key_is_read_too_and_a_base_url_alone_selects_openai() -> None:
    assert load_settings(environ={"OPENAI_API_KEY": "sk-x"}).llm_backend == "openai"
    ollama = load_settings(environ={"VOICECHAT_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"})
    assert ollama.llm_backend == "openai"


def test_a_flag_wins_over_the_environment() -> None:
    args = build_parser().parse_args(["serve", "--port", "9100", "--tts", "tone"])
    settings = load_settings(args, environ={"VOICECHAT_PORT": "9001", "VOICECHAT_TTS": "piper"})
    assert settings.port == 9100 and settings.tts == "tone"


@pytest.mark.parametrize(
    "environ",
    [
        {"VOICECHAT_PORT": "eighty"},
        {"VOICECHAT_PORT": "70000"},
        {"VOICECHAT_LOOKAHEAD": "-1"},
        {"VOICECHAT_MAX_PROMPT_CHARS": "0"},
        {"VOICECHAT_LLM": "gpt"},
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(environ=environ)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


def test_serve_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):  # help texts with "%" must not break argparse's formatting
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    assert "--edge-rate" in text and "+10%" in text and "--history-turns" in text
