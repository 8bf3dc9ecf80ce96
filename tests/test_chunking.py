from __future__ import annotations

import re
from pathlib import Path

from ragcli.chunking import split_document, split_sentences
from ragcli.records import Block, Document


def count(texts):
    return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]


def _doc(blocks: list[Block], source: str = "doc.txt") -> Document:
    return Document(Path("/x") / source, source, "text", blocks, "0" * 64, 1, 0.0)


def _paragraph(n_sentences: int, start: int, word: str = "word") -> str:
    return " ".join(f"Sentence {start + i} has {word} {word} {word}." for i in range(n_sentences))


def test_chunks_never_exceed_the_limit_and_cover_all_text() -> None:
    text = "\n".join(_paragraph(3, i * 3) for i in range(20))
    blocks = [Block(text, line_start=1, line_end=20)]
    chunks = split_document(_doc(blocks), count, chunk_size=40, overlap=0, max_tokens=50)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 40 for c in chunks)
    assert all(c.n_tokens == count([c.text])[0] for c in chunks)
    joined = " ".join(c.text for c in chunks)
    for i in range(60):
        assert f"Sentence {i} " in joined


def test_max_tokens_caps_chunk_size() -> None:
    blocks = [Block(_paragraph(30, 0), line_start=1, line_end=1)]
    chunks = split_document(_doc(blocks), count, chunk_size=500, overlap=0, max_tokens=30)
    assert chunks and all(c.n_tokens <= 30 for c in chunks)


def test_overlong_sentence_is_cut_at_words() -> None:
    blocks = [Block("x " * 300, line_start=1, line_end=1)]
    chunks = split_document(_doc(blocks), count, chunk_size=50, overlap=0)
    assert len(chunks) == 6
    assert all(c.n_tokens <= 50 for c in chunks)


def test_ids_are_deterministic_and_unique() -> None:
    blocks = [Block(_paragraph(40, 0), line_start=1, line_end=1)]
    first = split_document(_doc(blocks), count, chunk_size=40, overlap=8)
    second = split_document(_doc(blocks), count, chunk_size=40, overlap=8)
    assert [c.key for c in first] == [c.key for c in second]
    assert len({c.key for c in first}) == len(first)
    other = split_document(_doc(blocks, "other.txt"), count, chunk_size=40, overlap=8)
    assert not {c.key for c in first} & {c.key for c in other}


def test_overlap_repeats_whole_sentences_inside_a_paragraph() -> None:
    blocks = [Block(_paragraph(12, 0), line_start=1, line_end=1)]
    chunks = split_document(_doc(blocks), count, chunk_size=40, overlap=10)
    first_sentences = set(split_sentences_text(chunks[0].text))
    second_sentences = set(split_sentences_text(chunks[1].text))
    assert first_sentences & second_sentences
    no_overlap = split_document(_doc(blocks), count, chunk_size=40, overlap=0)
    assert not set(split_sentences_text(no_overlap[0].text)) & set(
        split_sentences_text(no_overlap[1].text)
    )


def split_sentences_text(text: str) -> list[str]:
    return [s.strip() for _, s in split_sentences(text)]


def test_chunks_do_not_cross_headings_or_pages() -> None:
    blocks = [
        Block("Intro", line_start=1, line_end=1, heading="Intro", is_heading=True),
        Block("Short intro text.", line_start=3, line_end=3, heading="Intro"),
        Block("Setup", line_start=5, line_end=5, heading="Intro > Setup", is_heading=True),
        Block("Setup text here.", line_start=7, line_end=7, heading="Intro > Setup"),
    ]
    chunks = split_document(_doc(blocks), count, chunk_size=200, overlap=0)
    assert [c.text for c in chunks] == ["Intro\n\nShort intro text.", "Setup\n\nSetup text here."]
    assert [(c.line_start, c.line_end, c.heading) for c in chunks] == [
        (1, 3, "Intro"),
        (5, 7, "Intro > Setup"),
    ]
    pages = [Block("Page one text.", page=1), Block("Page two text.", page=2)]
    chunks = split_document(_doc(pages), count, chunk_size=200, overlap=0)
    assert [(c.page, c.text) for c in chunks] == [(1, "Page one text."), (2, "Page two text.")]


def test_heading_only_section_joins_the_next_one() -> None:
    blocks = [
        Block("Title", line_start=1, line_end=1, heading="Title", is_heading=True),
        Block("Part", line_start=3, line_end=3, heading="Title > Part", is_heading=True),
        Block("Body.", line_start=5, line_end=5, heading="Title > Part"),
    ]
    chunks = split_document(_doc(blocks), count, chunk_size=200, overlap=0)
    assert len(chunks) == 1
    assert chunks[0].text == "Title\n\nPart\n\nBody."
    assert chunks[0].heading == "Title > Part"


def test_line_ranges_follow_sentences() -> None:
    text = "\n".join(f"Line {i} says something long enough here." for i in range(1, 11))
    blocks = [Block(text, line_start=5, line_end=14)]
    chunks = split_document(_doc(blocks), count, chunk_size=25, overlap=0)
    assert chunks[0].line_start == 5
    assert chunks[-1].line_end == 14
    for a, b in zip(chunks, chunks[1:]):
        assert a.line_end is not None and b.line_start is not None
        assert a.line_end < b.line_start


def test_paragraph_break_preferred_over_mid_paragraph_cut() -> None:
    blocks = [
        Block(_paragraph(3, 0), line_start=1, line_end=1),
        Block(_paragraph(3, 3), line_start=3, line_end=3),
    ]
    # Each paragraph is 24 tokens; both fit 48 but not 40: the cut falls between them.
    chunks = split_document(_doc(blocks), count, chunk_size=40, overlap=10)
    assert [c.line_start for c in chunks] == [1, 3]


def test_continuation_chunks_carry_their_heading_path() -> None:
    body = " ".join(f"Fact number {i} is here." for i in range(30))
    blocks = [
        Block("Guide", line_start=1, line_end=1, heading="Guide", is_heading=True),
        Block(body, line_start=3, line_end=3, heading="Guide"),
    ]
    chunks = split_document(_doc(blocks), count, chunk_size=40, overlap=0)
    assert len(chunks) > 2
    assert chunks[0].text.startswith("Guide\n\nFact number 0")
    for chunk in chunks[1:]:
        assert chunk.text.startswith("Guide\n\n") and chunk.heading == "Guide"
        assert chunk.n_tokens <= 40


def test_whole_code_blocks_over_the_limit_are_cut_between_lines_with_their_spans() -> None:
    from ragcli.records import Block, Document

    lines = [f"    value_{i} = compute_something(x, {i})" for i in range(23)]
    code = "\n".join(["def f(x):", *lines])
    document = Document(
        Path("/x/m.py"), "m.py", "python",
        [Block(code, line_start=10, line_end=33, heading="f", whole=True)], "0", 1, 0.0,
    )  # fmt: skip
    chunks = split_document(document, lambda texts: [len(t.split()) for t in texts], 40, 0)
    assert len(chunks) > 1
    for chunk in chunks:
        body = chunk.text.split("\n\n", 1)[-1] if chunk.text.startswith("f\n\n") else chunk.text
        for line in body.split("\n"):
            assert line in code.split("\n")  # never cut inside a line
        assert chunk.line_end - chunk.line_start + 1 == len(body.split("\n"))
        assert code.split("\n")[chunk.line_start - 10] == body.split("\n")[0]
    assert chunks[0].line_start == 10 and chunks[-1].line_end == 33
