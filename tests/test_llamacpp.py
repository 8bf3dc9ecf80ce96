"""The llama.cpp generation backend: choosing it, and matching llama.cpp and transformers.

The unit tests run everywhere. The integration ones run the bundled GGUF on llama.cpp (they
are skipped where llama-cpp-python is not installed; ``make install`` installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli import generation
from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import ModelError, UsageError
from ragcli.generation import BUNDLED_GENERATOR, choose_backend, open_generator
from ragcli.llamacpp import LlamaCppGenerator, llama_cpp_installed

from .conftest import REPO

MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence."},
    {
        "role": "user",
        "content": "Passages:\n[1] The Brindle bridge opened in 1932.\n\n"
        "Question: When did the Brindle bridge open?",
    },
]


@pytest.fixture
def with_llama(monkeypatch: pytest.MonkeyPatch):
    def set_installed(installed: bool) -> None:
        monkeypatch.setattr("ragcli.llamacpp.llama_cpp_installed", lambda: installed)

    return set_installed


def test_auto_picks_llama_cpp_for_gguf_models_when_installed(with_llama, tmp_path: Path) -> None:
    with_llama(True)
    assert choose_backend(None) == "llama.cpp"
    assert choose_backend(BUNDLED_GENERATOR) == "llama.cpp"
    assert choose_backend(str(tmp_path / "model.GGUF")) == "llama.cpp"
    assert choose_backend(str(tmp_path)) == "transformers"  # a transformers folder
    assert choose_backend("org/some-model") == "transformers"
    assert choose_backend(None, "transformers") == "transformers"
    with_llama(False)
    assert choose_backend(None) == "transformers"


def test_asking_for_llama_cpp_explains_what_is_missing(with_llama, tmp_path: Path) -> None:
    with_llama(False)
    with pytest.raises(ModelError, match="needs llama-cpp-python") as e:
        choose_backend(None, "llama.cpp")
    assert "ragcli[llama]" in (e.value.hint or "")
    with_llama(True)
    with pytest.raises(ModelError, match="runs GGUF files"):
        choose_backend("org/some-model", "llama.cpp")
    with pytest.raises(ModelError, match="GGUF file not found"):
        open_generator(str(tmp_path / "absent.gguf"), tmp_path, backend="llama.cpp")


def test_open_generator_returns_the_chosen_backend(with_llama, tmp_path: Path) -> None:
    with_llama(True)
    bundled = open_generator(None, tmp_path)
    assert isinstance(bundled, LlamaCppGenerator) and bundled.name == BUNDLED_GENERATOR
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    local = open_generator(str(gguf), tmp_path)
    assert isinstance(local, LlamaCppGenerator) and local.name == str(gguf.resolve())
    assert isinstance(open_generator(None, tmp_path, backend="transformers"), generation.Generator)


def test_a_broken_gguf_is_a_model_error(tmp_path: Path) -> None:
    if not llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed")
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="cannot load generator"):
        open_generator(str(gguf), tmp_path, backend="llama.cpp").load()


def test_unknown_backend_and_precision_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown backend"):
        load_settings(backend="vllm")
    with pytest.raises(UsageError, match="unknown embed-precision"):
        load_settings(embed_precision="fp8")
    result = CliRunner().invoke(app, ["ask", "why?", "--backend", "vllm"])
    assert result.exit_code == 2
    assert "unknown backend 'vllm'" in result.output


# -- with the bundled model --------------------------------------------------------------------

needs_llama = pytest.mark.skipif(
    not llama_cpp_installed(), reason="llama-cpp-python is not installed"
)


@pytest.fixture(scope="module")
def models_dir() -> Path:
    import os

    path = Path(os.environ.get("RAGCLI_TEST_MODELS_DIR", REPO / ".cache" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def llama(models_dir: Path) -> LlamaCppGenerator:
    loaded = open_generator(None, models_dir, backend="llama.cpp")
    assert isinstance(loaded, LlamaCppGenerator)
    loaded.load()
    return loaded


@pytest.mark.integration
@needs_llama
def test_greedy_tokens_match_llama_cpp_called_directly(
    llama: LlamaCppGenerator, models_dir: Path
) -> None:
    from llama_cpp import Llama

    text = "".join(llama.stream(MESSAGES, max_new_tokens=48))
    assert "1932" in text
    raw = Llama(
        model_path=str(models_dir / generation.BUNDLED_GGUF_NAME), n_ctx=4096, verbose=False
    )
    out = raw.create_completion(
        llama.prompt_ids(MESSAGES), max_tokens=48, temperature=0.0, repeat_penalty=1.0
    )
    assert text == out["choices"][0]["text"]
    assert llama.last_token_count == out["usage"]["completion_tokens"]
    assert llama.last_prompt_tokens == out["usage"]["prompt_tokens"]


@pytest.mark.integration
@needs_llama
def test_sampling_is_reproducible_with_a_seed(llama: LlamaCppGenerator) -> None:
    first = "".join(llama.stream(MESSAGES, 24, temperature=0.9, seed=7))
    again = "".join(llama.stream(MESSAGES, 24, temperature=0.9, seed=7))
    assert first == again and first


@pytest.mark.integration
@needs_llama
def test_the_prompt_is_the_one_transformers_renders(
    llama: LlamaCppGenerator, models_dir: Path
) -> None:
    from transformers import AutoTokenizer

    _, folder = generation.resolve_generator(None, models_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    expected = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert llama._formatter(messages=MESSAGES).prompt == expected
    assert llama.prompt_ids(MESSAGES) == tokenizer(expected, add_special_tokens=False)["input_ids"]


@pytest.mark.integration
@needs_llama
def test_a_local_gguf_file_runs_on_llama_cpp(llama: LlamaCppGenerator, models_dir: Path) -> None:
    path = models_dir / generation.BUNDLED_GGUF_NAME
    local = open_generator(str(path), models_dir)
    assert isinstance(local, LlamaCppGenerator) and local.name == str(path.resolve())
    assert "".join(local.stream(MESSAGES, 16)) == "".join(llama.stream(MESSAGES, 16))


@pytest.mark.integration
@needs_llama
def test_long_token_pieces_are_not_dropped(llama: LlamaCppGenerator) -> None:
    # A code model has single tokens for long runs of spaces; llama-cpp-python's own
    # detokenize returns nothing for pieces over 32 bytes.
    indent = " " * 48
    ids = llama.llm.tokenize(indent.encode(), add_bos=False)
    assert len(ids) == 1
    assert llama.piece(ids[0]) == indent.encode()
    line = f"def f():\n{indent}return 1\n"
    ids = llama.llm.tokenize(line.encode(), add_bos=False)
    assert b"".join(llama.piece(t) for t in ids) == line.encode()
