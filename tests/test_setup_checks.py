"""check-config catches setups that cannot work, though every key in them is valid:
nobody to answer, customers written to where no operator looks, an operator who can
act nowhere, a webhook served where Telegram does not post; and it warns of a secret
written in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Config, load_config, parse_config
from gateway.errors import ConfigError
from gateway.plugins import channel_models
from tests.support import CHANNEL_SECRETS, EMAIL, SLACK_CHANNEL, TELEGRAM, TELEGRAM_GROUP

ENVIRON = {
    **CHANNEL_SECRETS,
    "TELEGRAM_WEBHOOK_SECRET": "webhook-secret-1",
    "PGPASSWORD": "pg-secret",
}

ANNA = '[[operators]]\nid = "anna"\nname = "Anna"\ntelegram_id = 1001\n'
BORIS_ON_SLACK = '[[operators]]\nid = "boris"\nname = "Boris"\nslack_id = "UBORIS"\n'


def whole(text: str) -> Config:
    """``text`` as a config to run: its setup is checked, as an admin's file is."""
    return parse_config(text, channel_models(), environ=ENVIRON, check_setup=True)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        whole(text)
    return caught.value.problems


def test_a_setup_with_a_workspace_for_everyone_is_valid() -> None:
    config = whole(ANNA + BORIS_ON_SLACK + TELEGRAM_GROUP + SLACK_CHANNEL + EMAIL)
    assert sorted(config.channels) == ["email", "slack", "telegram"]
    assert config.warnings == ()
    # with no channel at all the gateway runs for its database and HTTP (nothing to reach)
    assert whole(ANNA).channels == {}


def test_nobody_to_answer_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert problems(TELEGRAM_GROUP) == [
        "operators: no operator is configured: nobody could answer a customer "
        "(add an [[operators]] table with id, name and their workspace ids)"
    ]
    # an empty file has working defaults for everything but that
    empty = tmp_path / "config.toml"
    empty.write_text("")
    assert main(["check-config", str(empty)]) == 2
    assert f"{empty}: operators: no operator is configured" in capsys.readouterr().err
    # commands that only read the database take it
    assert load_config(empty, channels=False).operators == []


def test_an_operator_who_can_act_in_no_workspace_is_named() -> None:
    # only Telegram hosts the workspace, and Boris has no telegram_id
    found = problems(ANNA + BORIS_ON_SLACK + TELEGRAM_GROUP)
    assert len(found) == 1, found
    assert found[0].startswith("operators[1]: boris can act in none of the configured workspaces")
    assert "telegram_id (telegram workspace)" in found[0]
    assert found[0].endswith("(line 5)")
    # with Slack's channel as well, Boris has a place to work
    whole(ANNA + BORIS_ON_SLACK + TELEGRAM_GROUP + SLACK_CHANNEL)


@pytest.mark.parametrize(
    ("channels", "key"),
    [(TELEGRAM, "telegram.workspace_chat_id"), (EMAIL, "email"), (EMAIL + TELEGRAM, "email")],
)
def test_customers_with_no_operators_workspace_are_refused(channels: str, key: str) -> None:
    [found] = problems(ANNA + channels)
    assert found.startswith(f"{key}: no operators' workspace is configured"), found
    assert "telegram.workspace_chat_id" in found and "slack.workspace_channel" in found


WEBHOOK = (
    TELEGRAM_GROUP
    + 'mode = "webhook"\nwebhook_url = "https://support.example.com/hooks/tg"\n'
    + 'webhook_secret = "${TELEGRAM_WEBHOOK_SECRET}"\n'
)


def test_webhook_mode_serves_the_path_telegram_posts_to() -> None:
    config = whole(ANNA + WEBHOOK)
    assert config.channels["telegram"].served_path == "/hooks/tg"
    same = whole(ANNA + WEBHOOK + 'webhook_path = "/hooks/tg"\n')
    assert same.channels["telegram"].served_path == "/hooks/tg"
    [found] = problems(ANNA + WEBHOOK + 'webhook_path = "/telegram/webhook"\n')
    assert found.startswith("telegram.webhook_path: '/telegram/webhook' is not the path of")
    assert "'/hooks/tg'" in found and found.endswith("(line 11)")


def test_a_secret_written_in_the_file_is_a_warning_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.toml"
    path.write_text(
        '[gateway]\ndatabase_url = "postgresql+asyncpg://gw:hunter2@db/gw"\n'
        + ANNA
        + '[telegram]\ntoken = "123:literal-token"\nworkspace_chat_id = -1001\n'
        + 'workspace_bots = ["${TELEGRAM_TOKEN}", "456:literal-too"]\n'
    )
    # TELEGRAM_TOKEN is the first bot's id too: give the shard its own
    monkeypatch.setenv("TELEGRAM_TOKEN", "789:from-env")
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{path}: valid")
    warned = captured.err.splitlines()
    assert [line.split(": ")[2] for line in warned] == [
        "gateway.database_url",
        "telegram.token",
        "telegram.workspace_bots[1]",
    ], warned
    assert all(line.startswith(f"warning: {path}: ") for line in warned)
    assert all("write ${NAME} and set NAME in the environment" in line for line in warned)
    # the warning names the key, never the secret
    assert not any(s in captured.err for s in ("hunter2", "literal-token", "literal-too"))
    # the same keys from the environment: no warning
    path.write_text(
        '[gateway]\ndatabase_url = "postgresql+asyncpg://gw:${PGPASSWORD}@db/gw"\n'
        + ANNA
        + TELEGRAM_GROUP
    )
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_both_forms_of_naming_the_config_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(ANNA)
    assert main(["check-config", "--config", str(path)]) == 0
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out.count(f"{path}: valid") == 2
    with pytest.raises(SystemExit) as refused:
        main(["check-config", str(path), "--config", str(tmp_path / "other.toml")])
    assert refused.value.code == 2
    assert "name one" in capsys.readouterr().err


def test_operators_ids_by_channel_name_stand_beside_the_old_keys() -> None:
    """``ids = { slack = ... }`` names an operator on any channel, a new one too;
    telegram_id, slack_id and email go on working and say the same."""
    cleo = '[[operators]]\nid = "cleo"\nname = "Cleo"\nids = { slack = "UCLEO" }\n'
    config = whole(ANNA + cleo + TELEGRAM_GROUP + SLACK_CHANNEL)
    anna, cleo_config = config.core.operators
    assert anna.identity("telegram") == "1001" and anna.ids == {"telegram": "1001"}
    assert cleo_config.identity("slack") == "UCLEO"
    assert cleo_config.identity("telegram") is None
    # a channel name no adapter has is a typo, said where it is
    found = problems(
        ANNA + '[[operators]]\nid = "dan"\nname = "Dan"\nids = { telgram = "5" }\n' + TELEGRAM_GROUP
    )
    assert any(
        p.startswith("operators[1].ids.telgram: no channel is called 'telgram'") for p in found
    ), found
    # the two ways of writing one id may not disagree
    clash = problems(
        '[[operators]]\nid = "eve"\nname = "Eve"\ntelegram_id = 7\n'
        'ids = { telegram = "8" }\n' + TELEGRAM_GROUP
    )
    assert any("disagree" in p for p in clash), clash


def test_an_operators_id_by_channel_name_is_checked_as_that_channel_reads_ids() -> None:
    """``ids.slack`` is held to what a Slack user id looks like, as ``slack_id`` is;
    and two operators may not share one id on a channel however it was written."""
    found = problems(
        ANNA
        + '[[operators]]\nid = "boris"\nname = "Boris"\nids = { slack = "boris" }\n'
        + TELEGRAM_GROUP
        + SLACK_CHANNEL
    )
    assert any(
        p.startswith("operators[1].ids.slack: 'boris' is not a slack id") and "U024BE7LH" in p
        for p in found
    ), found
    found = problems(
        ANNA
        + '[[operators]]\nid = "carol"\nname = "Carol"\nids = { telegram = "1001" }\n'
        + TELEGRAM_GROUP
    )
    assert any(
        p.startswith("operators[1].ids.telegram: '1001' is already used by operators[0]")
        for p in found
    ), found
