"""xllamacpp, the default engine: checks, prompt, streaming, cancelling, prefix reuse.

Most tests run a tiny chat model the tests build (``tests/tiny_llm.py``); the ones marked
``integration`` run the bundled model. All are skipped where xllamacpp is absent.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from ragcli.models import bundled_generator
from ragcli.models.engines import XLLAMACPP, probe, select_engine
from ragcli.models.generation import open_generator
from ragcli.models.xllama import XLlamaGenerator

from .conftest import REPO
from .tiny_llm import tiny_chat_gguf

pytestmark = pytest.mark.skipif(not XLLAMACPP.installed(), reason="xllamacpp is not installed")

MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence."},
    {
        "role": "user",
        "content": "Passages:\n[1] The Brindle bridge opened in 1932.\n\n"
        "Question: When did the Brindle bridge open?",
    },
]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_chat_gguf(tmp_path_factory.mktemp("tiny") / "tiny-chat.gguf")


@pytest.fixture(scope="module")
def tiny(tiny_gguf: Path) -> XLlamaGenerator:
    generator = XLlamaGenerator("tiny", tiny_gguf)
    generator.load()
    return generator


def test_the_check_passes_in_a_child_and_is_kept(tiny_gguf: Path, tmp_path: Path) -> None:
    verdict = probe(XLLAMACPP, "default", tiny_gguf)
    assert verdict.ok, verdict.detail
    assert verdict.measured["new_tokens"] > 0 and verdict.measured["prompt_tokens"] > 100
    status: list[str] = []
    chosen = select_engine(lambda: tiny_gguf, tmp_path, status.append, engines=(XLLAMACPP,))
    assert chosen is not None and chosen.engine is XLLAMACPP and chosen.variant == "default"
    assert select_engine(lambda: tiny_gguf, tmp_path, status.append, engines=(XLLAMACPP,))
    assert len(status) == 1  # checked once


def test_a_damaged_model_is_the_models_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    from ragcli.errors import ModelError

    with pytest.raises(ModelError, match="cannot load generator"):
        probe(XLLAMACPP, "default", broken)


def test_greedy_answers_are_the_same_every_time(tiny_gguf: Path) -> None:
    # Without the prefix cache: a prompt's last token recomputed alone can round differently
    # from the whole prompt in one batch, and random weights give near ties everywhere.
    fresh = XLlamaGenerator("tiny", tiny_gguf, reuse_prefix=False)
    first = "".join(fresh.stream(MESSAGES, max_new_tokens=16))
    assert first and fresh.last_token_count == 16  # random weights never say "stop"
    assert fresh.last_prompt_tokens == fresh.prompt_tokens(MESSAGES)
    assert "".join(fresh.stream(MESSAGES, max_new_tokens=16)) == first


def test_the_prompt_is_the_models_chat_template(tiny: XLlamaGenerator) -> None:
    # Byte-level vocabulary with ChatML specials: every byte a token, each marker one token.
    rendered = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in MESSAGES)
    rendered += "<|im_start|>assistant\n"
    markers = rendered.count("<|im_start|>") + rendered.count("<|im_end|>")
    plain = rendered.replace("<|im_start|>", "").replace("<|im_end|>", "")
    spaces = plain.count("  ")  # the one merge: two spaces
    assert tiny.prompt_tokens(MESSAGES) == len(plain.encode()) - spaces + markers


def test_sampling_is_reproducible_with_a_seed(tiny_gguf: Path) -> None:
    fresh = XLlamaGenerator("tiny", tiny_gguf, reuse_prefix=False)
    first = "".join(fresh.stream(MESSAGES, 12, temperature=0.9, seed=7))
    again = "".join(fresh.stream(MESSAGES, 12, temperature=0.9, seed=7))
    other = "".join(fresh.stream(MESSAGES, 12, temperature=0.9, seed=8))
    assert first == again and first != other


def test_closing_the_stream_cancels_the_answer(tiny: XLlamaGenerator) -> None:
    stream = tiny.stream(MESSAGES, max_new_tokens=1500)
    pieces = [next(stream) for _ in range(3)]
    stream.close()
    assert pieces
    # The server is free again: the next question is answered in full.
    assert "".join(tiny.stream(MESSAGES, 8)) and tiny.last_token_count == 8


def test_the_fixed_start_of_the_prompt_is_reused(tiny: XLlamaGenerator) -> None:
    "".join(tiny.stream(MESSAGES, 4))
    other = [MESSAGES[0], {"role": "user", "content": MESSAGES[1]["content"] + " Why?"}]
    "".join(tiny.stream(other, 4))
    assert tiny.last_timings["cache_n"] > 0.8 * tiny.last_prompt_tokens
    fresh = XLlamaGenerator("tiny", tiny._gguf, reuse_prefix=False)
    "".join(fresh.stream(MESSAGES, 4))
    "".join(fresh.stream(other, 4))
    assert fresh.last_timings["cache_n"] == 0


def test_prompt_lookup_decoding_gives_the_same_answer(tiny_gguf: Path) -> None:
    plain = XLlamaGenerator("tiny", tiny_gguf, reuse_prefix=False)
    looking = XLlamaGenerator("tiny", tiny_gguf, lookup=True, reuse_prefix=False)
    assert "".join(looking.stream(MESSAGES, 24)) == "".join(plain.stream(MESSAGES, 24))


def test_the_key_locks_the_loopback_listener(tiny: XLlamaGenerator) -> None:
    host, port = tiny._address
    assert host == "127.0.0.1"
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("POST", "/tokenize", '{"content": "hello"}')
    assert connection.getresponse().status == 401


# -- the bundled model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models_dir() -> Path:
    path = Path(os.environ.get("RAGCLI_TEST_MODELS_DIR", REPO / ".cache" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def bundled(models_dir: Path) -> XLlamaGenerator:
    loaded = open_generator(None, models_dir, backend="xllamacpp")
    assert isinstance(loaded, XLlamaGenerator)
    loaded.load()
    return loaded


@pytest.mark.integration
def test_the_bundled_model_answers_from_the_passage(bundled: XLlamaGenerator) -> None:
    answer = "".join(bundled.stream(MESSAGES, max_new_tokens=48))
    assert "1932" in answer
    assert bundled.last_token_count < 48  # it stopped by itself, at the end of its turn
    assert "".join(bundled.stream(MESSAGES, 48, temperature=0.9, seed=7)) == "".join(
        bundled.stream(MESSAGES, 48, temperature=0.9, seed=7)
    )


@pytest.mark.integration
def test_the_bundled_prompt_is_the_one_transformers_renders(
    bundled: XLlamaGenerator, models_dir: Path
) -> None:
    from transformers import AutoTokenizer

    gguf = models_dir / bundled_generator.BUNDLED_GGUF_NAME
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    rendered = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    expected = len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert bundled.prompt_tokens(MESSAGES) == expected


@pytest.mark.integration
def test_a_local_gguf_file_runs_on_xllamacpp(bundled: XLlamaGenerator, models_dir: Path) -> None:
    path = models_dir / bundled_generator.BUNDLED_GGUF_NAME
    local = open_generator(str(path), models_dir, backend="xllamacpp")
    assert isinstance(local, XLlamaGenerator) and local.name == str(path.resolve())
    assert "".join(local.stream(MESSAGES, 16)) == "".join(bundled.stream(MESSAGES, 16))


def test_yes_probability_scores_one_token_through_the_server(tiny: XLlamaGenerator) -> None:
    # The tiny model's vocabulary is bytes: neither "yes" nor "no" is a token it can start
    # with, so there is no probability to give (and nothing is sampled or raised).
    assert tiny.yes_probability(MESSAGES) is None
    stream = "".join(tiny.stream(MESSAGES, max_new_tokens=4))
    assert stream  # the server still answers normally afterwards
