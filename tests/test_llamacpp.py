"""The llama.cpp generation backend: choosing it, and matching llama.cpp and transformers.

The unit tests run everywhere. The integration ones run the bundled GGUF on llama.cpp (they
are skipped where llama-cpp-python is not installed; ``make install`` installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import ModelError, UsageError
from ragcli.models import bundled_generator, gguf_conversion, transformers_generator
from ragcli.models.bundled_generator import BUNDLED_GENERATOR
from ragcli.models.engines import LLAMA_CPP_PYTHON, XLLAMACPP, Engine, recorded_verdict
from ragcli.models.generation import choose_backend, open_generator
from ragcli.models.llamacpp import LlamaCppGenerator, llama_cpp_installed

from .conftest import REPO

MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence."},
    {
        "role": "user",
        "content": "Passages:\n[1] The Brindle bridge opened in 1932.\n\n"
        "Question: When did the Brindle bridge open?",
    },
]


WORKING = Engine(
    key="fake-working",
    module="tests.fake_engines",
    package="ragcli",
    factory="tests.fake_engines:WorkingEngine",
    hint="reinstall it",
)
ABSENT = Engine(
    key="absent", module="no_such_engine_module", package="none", factory="x:y", hint=""
)


def test_auto_picks_llama_cpp_for_gguf_models_when_an_engine_is_installed(tmp_path: Path) -> None:
    installed = (WORKING,)
    assert choose_backend(None, engines=installed) == "llama.cpp"
    assert choose_backend(BUNDLED_GENERATOR, engines=installed) == "llama.cpp"
    assert choose_backend(str(tmp_path / "model.GGUF"), engines=installed) == "llama.cpp"
    assert choose_backend(str(tmp_path), engines=installed) == "transformers"  # a folder
    assert choose_backend("org/some-model", engines=installed) == "transformers"
    assert choose_backend(None, "transformers", engines=installed) == "transformers"
    assert choose_backend(None, "fake-working", engines=installed) == "llama.cpp"
    assert choose_backend(None, engines=(ABSENT,)) == "transformers"


def test_asking_for_llama_cpp_explains_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="needs a llama.cpp engine") as e:
        choose_backend(None, "llama.cpp", engines=(ABSENT,))
    assert "xllamacpp" in (e.value.hint or "")
    with pytest.raises(ModelError, match="needs llama-cpp-python, which is not installed"):
        choose_backend(None, "llama-cpp-python", engines=(WORKING,))
    with pytest.raises(ModelError, match="runs GGUF files"):
        choose_backend("org/some-model", "llama.cpp", engines=(WORKING,))
    with pytest.raises(ModelError, match="GGUF file not found"):
        open_generator(str(tmp_path / "absent.gguf"), tmp_path, engines=(WORKING,))


def test_open_generator_returns_the_chosen_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the engine check's child imports tests.fake_engines
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    local = open_generator(str(gguf), tmp_path, engines=(WORKING,))
    assert type(local).__name__ == "WorkingEngine" and local.name == str(gguf.resolve())
    chosen = open_generator(None, tmp_path, backend="transformers", engines=(WORKING,))
    assert isinstance(chosen, transformers_generator.Generator)


@pytest.mark.parametrize("engine", [LLAMA_CPP_PYTHON, XLLAMACPP], ids=lambda e: e.key)
def test_a_broken_gguf_is_a_model_error(engine: Engine, tmp_path: Path) -> None:
    if not engine.installed():
        pytest.skip(f"{engine.key} is not installed")
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="cannot load generator"):
        open_generator(str(gguf), tmp_path, backend=engine.key).load()
    assert recorded_verdict(engine, "default", tmp_path) is None  # not the engine's fault


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
    loaded = open_generator(None, models_dir, backend="llama-cpp-python")
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
        model_path=str(models_dir / bundled_generator.BUNDLED_GGUF_NAME), n_ctx=4096, verbose=False
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

    _, folder = gguf_conversion.resolve_generator(None, models_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    expected = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert llama._formatter(messages=MESSAGES).prompt == expected
    assert llama.prompt_ids(MESSAGES) == tokenizer(expected, add_special_tokens=False)["input_ids"]


@pytest.mark.integration
@needs_llama
def test_a_local_gguf_file_runs_on_llama_cpp(llama: LlamaCppGenerator, models_dir: Path) -> None:
    path = models_dir / bundled_generator.BUNDLED_GGUF_NAME
    local = open_generator(str(path), models_dir, backend="llama-cpp-python")
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
