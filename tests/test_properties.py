"""Property-based tests: the chunker's promises on any text, the loaders' on any bytes."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli.chunking import split_document
from ragcli.errors import LoaderError
from ragcli.loaders import load_documents, supported_extensions
from ragcli.records import Block, Document

from .conftest import SAMPLE_CORPUS

_WORD = re.compile(r"\w+")


def count(texts):
    """Additive, like a real tokenizer on whitespace-separated text: words plus dots."""
    return [len(_WORD.findall(t)) + t.count(".") for t in texts]


words = st.text(alphabet="abcdefghij.,!?-", min_size=1, max_size=30)
paragraph = st.lists(words, min_size=1, max_size=60).map(" ".join)
block = st.builds(
    lambda text, heading, page: Block(text, heading=heading, page=page),
    paragraph,
    st.sampled_from([None, "Intro", "Intro > Details"]),
    st.sampled_from([None, 1, 2]),
)


def _document(blocks: list[Block]) -> Document:
    return Document(Path("/d.txt"), "d.txt", "text", blocks, "0" * 64, 1, 1.0)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _is_subsequence(small: str, large: str) -> bool:
    it = iter(large)
    return all(ch in it for ch in small)


@settings(max_examples=150, deadline=None)
@given(
    blocks=st.lists(block, min_size=1, max_size=8),
    size=st.integers(min_value=4, max_value=80),
    overlap=st.integers(min_value=0, max_value=20),
)
def test_chunks_respect_the_limit_cover_the_text_and_have_stable_ids(blocks, size, overlap):
    document = _document(blocks)
    chunks = split_document(document, count, size, overlap)
    again = split_document(document, count, size, overlap)
    assert [c.key for c in chunks] == [c.key for c in again]  # deterministic
    assert len({c.key for c in chunks}) == len(chunks)  # and unique
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.n_tokens == count([chunk.text])[0] <= size
    # Every character of the document, in order, is in the chunks (overlap and heading lines
    # only add some): nothing is dropped, however long a word.
    assert _is_subsequence(_squeeze(document.text), _squeeze("".join(c.text for c in chunks)))


@settings(max_examples=40, deadline=None)
@given(word_length=st.integers(min_value=1, max_value=5000), size=st.integers(4, 50))
def test_an_overlong_word_is_cut_not_lost(word_length: int, size: int) -> None:
    word = ("abcdefgh." * 700)[:word_length]
    chunks = split_document(_document([Block(f"Start {word} end.")]), count, size, 0)
    assert all(c.n_tokens <= size for c in chunks)
    assert _squeeze("".join(c.text for c in chunks)) == _squeeze(f"Start {word} end.")


def _load(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory(prefix="ragcli-fuzz-") as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            documents = load_documents(path, path.name)
        except LoaderError as e:
            assert e.message and "\n" not in e.message.strip()
            return
    assert documents and all(d.blocks for d in documents)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(list(supported_extensions())))
def test_loaders_raise_nothing_but_loader_error_on_any_bytes(data: bytes, suffix: str) -> None:
    _load(data, suffix)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=2000), suffix=st.sampled_from([".md", ".rst", ".html", ".jsonl"]))
def test_loaders_on_any_text(text: str, suffix: str) -> None:
    _load(text.encode("utf-8", "surrogatepass"), suffix)


PDF = (SAMPLE_CORPUS / "harbour_trust_report_2023.pdf").read_bytes()


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(
        st.tuples(st.integers(0, len(PDF) - 1), st.binary(min_size=1, max_size=8)), max_size=6
    ),
    keep=st.integers(min_value=1, max_value=len(PDF)),
)
def test_pdf_loader_on_damaged_pdfs(cuts: list[tuple[int, bytes]], keep: int) -> None:
    data = bytearray(PDF[:keep])
    for offset, patch in cuts:
        data[offset : offset + len(patch)] = patch
    _load(bytes(data), ".pdf")
