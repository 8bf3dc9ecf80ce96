"""The bundled generator on xllamacpp, the default engine: prompt, streaming, cancelling, reuse.

These run the real model (marker ``integration``) and are skipped where xllamacpp is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragcli import generation
from ragcli.engines import XLLAMACPP
from ragcli.generation import open_generator
from ragcli.xllama import XLlamaGenerator

from .conftest import REPO

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not XLLAMACPP.installed(), reason="xllamacpp is not installed"),
]

MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence."},
    {
        "role": "user",
        "content": "Passages:\n[1] The Brindle bridge opened in 1932.\n\n"
        "Question: When did the Brindle bridge open?",
    },
]


@pytest.fixture(scope="module")
def models_dir() -> Path:
    path = Path(os.environ.get("RAGCLI_TEST_MODELS_DIR", REPO / ".cache" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def xllama(models_dir: Path) -> XLlamaGenerator:
    loaded = open_generator(None, models_dir, backend="xllamacpp")
    assert isinstance(loaded, XLlamaGenerator)
    loaded.load()
    return loaded


def test_greedy_answers_are_the_same_every_time(xllama: XLlamaGenerator) -> None:
    first = "".join(xllama.stream(MESSAGES, max_new_tokens=48))
    assert "1932" in first
    assert xllama.last_token_count > 0
    assert xllama.last_prompt_tokens == xllama.prompt_tokens(MESSAGES)
    assert "".join(xllama.stream(MESSAGES, max_new_tokens=48)) == first


def test_the_prompt_is_the_chat_template_transformers_renders(
    xllama: XLlamaGenerator, models_dir: Path
) -> None:
    from transformers import AutoTokenizer

    gguf = models_dir / generation.BUNDLED_GGUF_NAME
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    rendered = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    expected = len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert xllama.prompt_tokens(MESSAGES) == expected


def test_sampling_is_reproducible_with_a_seed(xllama: XLlamaGenerator) -> None:
    first = "".join(xllama.stream(MESSAGES, 24, temperature=0.9, seed=7))
    again = "".join(xllama.stream(MESSAGES, 24, temperature=0.9, seed=7))
    assert first == again and first


def test_closing_the_stream_cancels_the_answer(xllama: XLlamaGenerator) -> None:
    long = [*MESSAGES[:1], {"role": "user", "content": "Count from 1 to 200, one per line."}]
    stream = xllama.stream(long, max_new_tokens=400)
    pieces = [next(stream) for _ in range(3)]
    stream.close()
    assert pieces
    # The server is free again: the next question is answered in full.
    assert "1932" in "".join(xllama.stream(MESSAGES, 48))


def test_the_fixed_start_of_the_prompt_is_reused(xllama: XLlamaGenerator) -> None:
    "".join(xllama.stream(MESSAGES, 8))
    other = [MESSAGES[0], {"role": "user", "content": MESSAGES[1]["content"] + " Why?"}]
    "".join(xllama.stream(other, 8))
    cached = xllama.last_timings.get("cache_n", 0)
    assert cached > 0.5 * xllama.last_prompt_tokens  # only the new end was computed


def test_the_key_locks_the_loopback_listener(xllama: XLlamaGenerator) -> None:
    import http.client

    host, port = xllama._address
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("POST", "/tokenize", '{"content": "hello"}')
    assert connection.getresponse().status == 401
    assert host == "127.0.0.1"


def test_a_local_gguf_file_runs_on_xllamacpp(xllama: XLlamaGenerator, models_dir: Path) -> None:
    path = models_dir / generation.BUNDLED_GGUF_NAME
    local = open_generator(str(path), models_dir, backend="xllamacpp")
    assert isinstance(local, XLlamaGenerator) and local.name == str(path.resolve())
    assert "".join(local.stream(MESSAGES, 16)) == "".join(xllama.stream(MESSAGES, 16))
