"""Config: the example is valid; a broken one fails with key paths, values and lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from gateway.cli import main
from gateway.config import KeyLines, load_config, parse_config
from gateway.errors import ConfigError
from gateway.plugins import channel_models, discover_plugins
from gateway.texts import render

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


def problems(text: str, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, **kwargs)
    return caught.value.problems


def test_the_example_config_is_valid_and_documents_every_key() -> None:
    config = load_config(EXAMPLE)
    assert [op.id for op in config.operators] == ["anna", "boris"]
    assert config.gateway.database_url == "sqlite+aiosqlite:///gateway.db"
    text = EXAMPLE.read_text()
    for section in (
        config.gateway,
        config.routing,
        config.outbox,
        config.texts,
        config.core.hours,
        config.core.sla,
        config.core.csat,
        config.core.faq,
        config.core.tags,
        config.core.privacy,
    ):
        for key in type(section).model_fields:
            if key == "entries":
                assert "\n[[faq.entries]]\n" in text
                continue
            assert f"\n{key} = " in text, f"{key} is not in config.example.toml"
    for key in type(config.operators[0]).model_fields:
        assert f"\n{key} = " in text
    assert "\n[[replies]]\n" in text and config.core.replies
    for key in type(config.core.replies[0]).model_fields:
        assert f"\n{key} = " in text or f"\n{key}." in text, f"replies.{key}"
    # channel sections are documented commented out (they need secrets to validate)
    for name, plugin in discover_plugins().items():
        assert f"# [{name}]" in text
        for key in plugin.config_model.model_fields:
            assert f"\n# {key} = " in text or f"\n# # {key} = " in text, f"{name}.{key}"


def example_section(name: str) -> str:
    """A commented-out channel section of config.example.toml, uncommented."""
    text = EXAMPLE.read_text()
    section = text[text.index(f"# [{name}]") :]
    section = section.split("\n\n", 1)[0]  # a blank line ends it
    return "\n".join(
        line.removeprefix("# ")
        for line in section.splitlines()
        if line.startswith("# ") and not line.startswith("# # ")
    )


def test_the_example_channel_sections_are_valid_once_uncommented() -> None:
    models = channel_models()
    config = parse_config(
        example_section("telegram"), models, environ={"TELEGRAM_TOKEN": "123:abc"}
    )
    assert config.channels["telegram"].workspace_chat_id == -1001234567890
    environ = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1-abc"}
    config = parse_config(example_section("slack"), models, environ=environ)
    assert config.channels["slack"].workspace_channel == "C0123456789"
    assert config.channels["slack"].mode == "socket"
    config = parse_config(example_section("email"), models, environ={"EMAIL_PASSWORD": "pw"})
    assert config.channels["email"].address == "support@example.com"
    config = parse_config(example_section("web"), models)
    assert config.channels["web"].origins == ["https://shop.example.com"]


def test_slack_section_problems_name_what_to_fix() -> None:
    models = channel_models()
    found = problems(
        '[slack]\nbot_token = "xoxp-user-token"\nworkspace_channel = "#support"\n',
        channel_models=models,
    )
    text = "\n".join(found)
    assert "slack.bot_token" in text and "xoxb-" in text
    assert "slack.workspace_channel" in text and "not its name" in text
    found = problems('[slack]\nbot_token = "xoxb-1"\nmode = "http"\n', channel_models=models)
    assert "signing_secret" in "\n".join(found)
    found = problems('[slack]\nbot_token = "xoxb-1"\n', channel_models=models)
    assert "app_token" in "\n".join(found)


def test_an_empty_file_gives_working_defaults() -> None:
    config = parse_config("")
    assert config.routing.strategy == "least_busy"
    assert config.routing.default_max_chats == 4
    assert config.operators == []


def test_each_problem_names_the_key_path_the_value_and_the_line() -> None:
    found = problems(
        "[gateway]\n"
        'timezone = "Mars/Base"\n'
        "\n"
        "[[operators]]\n"
        'id = "anna"\n'
        'name = "Anna"\n'
        "\n"
        "[[operators]]\n"
        'id = "boris"\n'
        'name = "Boris"\n'
        "max_chats = 0\n"
    )
    assert found == [
        "gateway.timezone: unknown time zone (use an IANA name such as Europe/Berlin) "
        "(got 'Mars/Base') (line 2)",
        "operators[1].max_chats: Input should be greater than or equal to 1 (got 0) (line 11)",
    ]


def test_a_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[gateway]\ntimezone = "UTC\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = caught.value.problems
    assert line.startswith(f"{path}: TOML syntax error:")
    assert "line 2, column" in line


def test_unknown_sections_and_keys_are_errors_not_ignored() -> None:
    found = problems('[routing]\nstrategy = "manual"\nstickyhours = 3\n\n[telegarm]\ntoken = 1\n')
    assert found[0].startswith("telegarm: unknown section: nothing in this gateway reads it")
    assert found[0].endswith("(line 5)")
    assert found[1] == "routing.stickyhours: unknown key (a typo?) (line 3)"


def test_duplicate_operators_and_missing_fallback_texts_are_caught() -> None:
    found = problems(
        '[[operators]]\nid = "anna"\nname = "Anna"\ntelegram_id = 7\n'
        '[[operators]]\nid = "anna"\nname = "Anne"\ntelegram_id = 7\n'
        '[texts]\nclosed = { ru = "Закрыто" }\n'
    )
    assert "operators[1].id: 'anna' is already used by operators[0] (line 6)" in found
    assert "operators[1].telegram_id: 7 is already used by operators[0] (line 8)" in found
    assert any(p.startswith("texts.closed: has no 'en' variant") for p in found)


def test_text_placeholders_are_checked() -> None:
    found = problems('[texts]\nqueued = { en = "You are {posiiton}", ru = "Вы {position}" }\n')
    assert found == [
        "texts.queued.en: unknown placeholder {posiiton} (allowed: {position}) (line 2)"
    ]


def test_saved_replies_and_tags_are_checked() -> None:
    found = problems(
        '[tags]\nsuggested = ["vip", "two words"]\n'
        '[[replies]]\nname = "refund"\ntext = "Hi {custmer}"\n'
        '[[replies]]\nname = "Bad Name"\ntext = "Hi"\n'
    )
    assert any(p.startswith("tags.suggested: ") and "'two words' is not a tag" in p for p in found)
    assert any(
        p.startswith("replies[0].text: ") and "unknown placeholder {custmer}" in p for p in found
    )
    assert any(p.startswith("replies[1].name: ") for p in found)
    # checked across entries once each entry is valid
    found = problems(
        '[[replies]]\nname = "refund"\ntext = "Hi"\n'
        '[[replies]]\nname = "refund"\ntext = "Hi"\n'
        '[[replies]]\nname = "de-only"\ntext = { de = "Hallo {customer}" }\n'
    )
    assert any(p.startswith("replies[1].name: 'refund' is already used") for p in found)
    assert any(p.startswith("replies[2].text: has no 'en' variant") for p in found)
    config = parse_config(
        '[tags]\nsuggested = ["#VIP", "vip", "billing"]\n'
        '[[replies]]\nname = "refund"\ntext = { en = "Hi {customer}", de = "Hallo {customer}" }\n'
    )
    assert config.core.tags.suggested == ["vip", "billing"]
    assert config.core.saved_reply("REFUND") is config.core.replies[0]


def test_texts_fall_back_from_region_to_language_to_default() -> None:
    config = parse_config(
        '[gateway]\ndefault_language = "en"\n'
        '[texts]\nassigned = { en = "{operator} helps", pt = "{operator} ajuda" }\n'
    )
    texts, default = config.texts, config.gateway.default_language
    assert render(texts, "assigned", "pt-BR", default, operator="Ana") == "Ana ajuda"
    assert render(texts, "assigned", "de", default, operator="Ana") == "Ana helps"
    assert render(texts, "assigned", None, default, operator="Ana") == "Ana helps"


class TelegramSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: SecretStr
    api_base: str = "https://api.telegram.org"


def test_env_secrets_are_substituted_and_a_missing_one_is_named() -> None:
    text = '[telegram]\ntoken = "${TG_TOKEN}"\napi_base = "http://127.0.0.1:${PORT}/x$${y}"\n'
    config = parse_config(
        text, {"telegram": TelegramSection}, environ={"TG_TOKEN": "123:SECRET", "PORT": "81"}
    )
    section = config.channels["telegram"]
    assert section.token.get_secret_value() == "123:SECRET"
    assert section.api_base == "http://127.0.0.1:81/x${y}"
    assert "123:SECRET" in config.secrets
    found = problems(text, channel_models={"telegram": TelegramSection}, environ={"PORT": "81"})
    assert found == ["telegram.token: environment variable TG_TOKEN is not set (line 2)"]


def test_a_bad_secret_value_is_never_echoed() -> None:
    found = problems(
        '[telegram]\ntoken = "${TG_TOKEN}"\napi_base = 5\n',
        channel_models={"telegram": TelegramSection},
        environ={"TG_TOKEN": "123:SECRET"},
    )
    assert all("123:SECRET" not in p for p in found)
    found = problems(
        '[gateway]\ndatabase_url = "${DB}"\n', environ={"DB": "mysql://root:hunter2@db/x"}
    )
    assert found == [
        "gateway.database_url: driver 'mysql+mysqldb' is not supported: use "
        "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB "
        "(got a secret value, not shown) (line 2)"
    ]


def test_a_whole_sections_problem_never_echoes_its_secrets() -> None:
    """A check across a section's keys (http mode without a usable signing secret)
    names the section, not the values in it: the bot token stays out of the error."""
    found = problems(
        '[slack]\nbot_token = "${SLACK_BOT}"\nmode = "http"\nsigning_secret = "${SIGN}"\n'
        'workspace_channel = "C0123"\n',
        channel_models=channel_models(),
        environ={"SLACK_BOT": "xoxb-VERY-SECRET", "SIGN": "short"},
    )
    assert any(p.startswith("slack: http mode needs signing_secret") for p in found), found
    assert all("VERY-SECRET" not in p and "short" not in p for p in found), found


def test_key_lines_follow_arrays_of_tables_and_dotted_keys() -> None:
    lines = KeyLines(
        '[[operators]]\nid = "a"\n\n[[operators]]\nid = "b"\nlimits.max = 3\n'
        "[[faq.entries]]\nq = 1\n[[faq.entries]]\nq = 2\n"
    )
    assert lines.find("operators[0].id") == 2
    assert lines.find("operators[1].id") == 5
    assert lines.find("operators[1].limits.max") == 6
    assert lines.find("faq.entries[1].q") == 10
    assert lines.find("operators[1].missing") == 4


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{EXAMPLE}: valid - 2 operator(s) (anna, boris), routing least_busy")
    broken = tmp_path / "broken.toml"
    broken.write_text('[routing]\nstrategy = "fastest"\ndefault_max_chats = "four"\n')
    assert main(["check-config", str(broken)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{broken}: routing.strategy: Input should be")
    assert "(got 'fastest') (line 2)" in err[0]
    assert err[1].startswith(f"{broken}: routing.default_max_chats:")
    assert err[-1] == "2 problem(s) found"
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_workspace_bots_are_checked_and_kept_secret() -> None:
    models = channel_models()
    base = '[telegram]\ntoken = "${TELEGRAM_TOKEN}"\n'
    environ = {"TELEGRAM_TOKEN": "123:abc", "BOT_2": "456:def"}
    config = parse_config(
        base + 'workspace_chat_id = -1001\nworkspace_bots = ["${BOT_2}", "789:literal"]\n',
        models,
        environ=environ,
    )
    assert [t.get_secret_value() for t in config.channels["telegram"].workspace_bots] == [
        "456:def",
        "789:literal",
    ]
    assert {"456:def", "789:literal"} <= config.secrets  # never printed in a log
    found = problems(
        base + 'workspace_chat_id = -1001\nworkspace_bots = ["123:other"]\n',
        channel_models=models,
        environ=environ,
    )
    assert any("each bot must be a different bot" in p for p in found), found
    found = problems(
        base + 'workspace_bots = ["456:def"]\n', channel_models=models, environ=environ
    )
    assert any("set workspace_chat_id" in p for p in found), found
    found = problems(
        base + 'workspace_chat_id = -1001\nworkspace_bots = ["nonsense"]\n',
        channel_models=models,
        environ=environ,
    )
    assert any("telegram.workspace_bots" in p and "@BotFather" in p for p in found), found
