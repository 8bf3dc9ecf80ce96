"""Filters applied inside retrieval (--path, --after, --before, --type, --tag) on both stores,
Markdown front matter as document metadata, and the filters' parser shared by the command
line, the HTTP server and the MCP tools."""

from __future__ import annotations

import fnmatch
import json
import os
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import EXIT_NO_COLLECTION, EXIT_USAGE, UsageError
from ragcli.filters import Filters, parse_filters
from ragcli.loaders import load_documents, parse_markdown_document
from ragcli.pipeline.serving import SEARCH_FIELDS, error_body, parse_query
from ragcli.records import Block, Chunk, Document
from ragcli.store import Store, make_manifest
from ragcli.store.location import FolderLocation, Location, location_for

runner = CliRunner()
DAY = 86400.0
NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


# -- the parser ---------------------------------------------------------------------------------


def test_dates_iso_and_ages() -> None:
    may = datetime(2024, 5, 1, tzinfo=timezone.utc).timestamp()
    assert parse_filters(after="2024-05-01") == Filters(after=may)
    assert parse_filters(after="2024-05-01T00:00:00Z") == Filters(after=may)
    assert parse_filters(after="2024-05-01T02:00+02:00") == Filters(after=may)
    assert parse_filters(before="2024-05-01 00:00") == Filters(before=may)  # naive: UTC
    assert parse_filters(after="30d", now=NOW) == Filters(after=NOW - 30 * DAY)
    assert parse_filters(after="12h", before="1h", now=NOW) == Filters(
        after=NOW - 12 * 3600, before=NOW - 3600
    )
    assert parse_filters(after="2w", now=NOW) == Filters(after=NOW - 14 * DAY)
    assert parse_filters() is None and parse_filters(types=[], tags=[]) is None


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "30", "6m", "-3d", "", "2024/05/01"])
def test_a_nonsense_date_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="--after .* is not a date") as caught:
        parse_filters(after=value)
    assert "30d" in (caught.value.hint or "")


def test_after_must_come_before_before() -> None:
    with pytest.raises(UsageError, match="is not earlier than --before"):
        parse_filters(after="2024-06-01", before="2024-05-01")


def test_types_map_names_and_extensions_to_stored_formats() -> None:
    filters = parse_filters(types=["pdf,MD", ".txt", "markdown", "htm"])
    assert filters == Filters(formats=("pdf", "markdown", "text", "html"))
    assert parse_filters(types=["rst", "jsonl", "html"]) == Filters(
        formats=("rst", "jsonl", "html")
    )
    assert parse_filters(types=["docx,pptx", "xlsx", "py", "ts", "png"]) == Filters(
        formats=("docx", "pptx", "xlsx", "python", "typescript", "image")
    )
    with pytest.raises(UsageError, match=r"unknown document type 'pages' \(--type\)") as caught:
        parse_filters(types=["pdf,pages"])
    assert "markdown" in (caught.value.hint or "") and "pdf" in (caught.value.hint or "")
    with pytest.raises(UsageError, match="--type needs a type"):
        parse_filters(types=[" , "])


def test_tags_are_trimmed_lower_case_and_once() -> None:
    assert parse_filters(tags=["Ops", " release ,ops"]) == Filters(tags=("ops", "release"))
    with pytest.raises(UsageError, match="--tag needs a tag"):
        parse_filters(tags=[""])


def test_describe_names_every_filter() -> None:
    filters = parse_filters("docs/*", "2024-05-01", "2024-06-01T12:00Z", ["md", "pdf"], ["a", "b"])
    assert filters is not None
    assert filters.describe() == (
        "path 'docs/*', after 2024-05-01, before 2024-06-01T12:00:00Z, "
        "type markdown or pdf, tag a or b"
    )


# -- front matter -------------------------------------------------------------------------------


def _front(text: str):
    return parse_markdown_document(text.encode())


def test_front_matter_title_date_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(
        "---\ntitle: Release notes\ndate: 2024-05-10\ntags: [Release, ops, ops]\n---\n"
        "# Heading\n\nThe harbour tram runs at dawn.\n"
    )
    (document,) = load_documents(path, "notes.md")
    assert document.title == "Release notes"  # the front matter's, not the first heading
    assert document.date == datetime(2024, 5, 10, tzinfo=timezone.utc).timestamp()
    assert document.tags == ["release", "ops"]
    assert "title:" not in document.text and "harbour tram" in document.text


@pytest.mark.parametrize(
    ("header", "when"),
    [
        ("date: 2024-05-10T08:30:00Z", datetime(2024, 5, 10, 8, 30, tzinfo=timezone.utc)),
        ("date: 2024-05-10 08:30:00", datetime(2024, 5, 10, 8, 30, tzinfo=timezone.utc)),
        ("date: '2024-05-10T10:30+02:00'", datetime(2024, 5, 10, 8, 30, tzinfo=timezone.utc)),
        ("date: '2024-05-10'", datetime(2024, 5, 10, tzinfo=timezone.utc)),
        ("date: soon", None),
        ("date: 2024-13-45", None),
        ("date: [1, 2]", None),
    ],
)
def test_front_matter_dates(header: str, when: datetime | None) -> None:
    _, _, front = _front(f"---\n{header}\n---\nText.\n")
    assert front.date == (when.timestamp() if when else None)


def test_front_matter_tags_as_a_comma_separated_string() -> None:
    _, _, front = _front("---\ntags: Alpha, beta ,, gamma\n---\nText.\n")
    assert front.tags == ("alpha", "beta", "gamma")
    _, _, front = _front("---\ntags: [2024, {a: b}, x]\n---\nText.\n")
    assert front.tags == ("2024", "x")


@pytest.mark.parametrize(
    "header",
    [
        "title: [unclosed",
        "- just\n- a list",
        "plain words",
        "title: a\n  bad: indent: x",
        "!!python/object:os.system {}",
    ],
)
def test_malformed_front_matter_is_absent(header: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text(f"---\n{header}\n---\n# First heading\n\nThe body stays.\n")
    (document,) = load_documents(path, "broken.md")
    assert (document.title, document.date, document.tags) == ("First heading", None, [])
    assert "The body stays." in document.text and "---" not in document.text


def test_no_front_matter_and_a_rule_that_never_closes() -> None:
    blocks, title, front = _front("# Title\n\nText.\n")
    assert (title, front.date, front.tags) == ("Title", None, ())
    blocks, title, front = _front("---\nNot front matter after all.\n")
    assert front.date is None and "Not front matter" in " ".join(b.text for b in blocks)


# -- both stores: filters inside the search return exactly the k best matching passages -------

DIM = 16
PER_DOCUMENT = 6


def _spec(n: int) -> dict:
    """Document ``n``: its format, source, file mtime, front-matter date and tags."""
    fmt, extension = [("markdown", "md"), ("pdf", "pdf"), ("text", "txt")][n % 3]
    tags = (["alpha"] if n % 2 == 0 else []) + (["beta"] if n % 3 == 0 else [])
    return {
        "source": f"{'a' if n < 6 else 'b'}/d{n:02}.{extension}",
        "format": fmt,
        "mtime": NOW - n * 10 * DAY,
        "date": NOW - (100 + n) * DAY if n % 4 == 0 else None,
        "tags": tags,
    }


SPECS = [_spec(n) for n in range(12)]


def _allowed(spec: dict, filters: Filters, front_matter: bool = True) -> bool:
    """What a filter should keep, worked out by hand."""
    when = spec["date"] if front_matter and spec["date"] is not None else spec["mtime"]
    tags = spec["tags"] if front_matter else []
    return (
        (filters.source_glob is None or fnmatch.fnmatchcase(spec["source"], filters.source_glob))
        and (filters.after is None or when >= filters.after)
        and (filters.before is None or when < filters.before)
        and (not filters.formats or spec["format"] in filters.formats)
        and (not filters.tags or bool(set(tags) & set(filters.tags)))
    )


def _fill(store: Store) -> dict[int, int]:
    """Add the twelve documents; returns each chunk id's document number."""
    rng = np.random.default_rng(7)
    for n, spec in enumerate(SPECS):
        document = Document(
            Path("/docs") / spec["source"], spec["source"], spec["format"], [Block("x")],
            f"{n:064x}", 100, spec["mtime"], date=spec["date"], tags=spec["tags"],
        )  # fmt: skip
        chunks = []
        for i in range(PER_DOCUMENT):
            g = n * PER_DOCUMENT + i
            # Every chunk holds "harbour", each with its own count and length: no BM25 ties.
            text = "harbour " * (1 + g % 3) + " ".join(f"f{g}n{j}" for j in range(g + 1))
            chunks.append(Chunk(f"{n}-{i}", i, text, 3, line_start=i + 1))
        vectors = rng.normal(size=(PER_DOCUMENT, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        document_id = store.add_document(document, len(chunks), "/docs", "/docs")
        store.add_chunks(document_id, chunks, vectors)
    store.save()
    owner = {}
    for hit in store.hits([(i, 0.0) for i, _ in store.dense(np.ones(DIM, np.float32), 100)]):
        owner[hit.row_id] = next(n for n, s in enumerate(SPECS) if s["source"] == hit.source)
    return owner


FILTERS = [
    Filters(source_glob="b/*"),
    Filters(after=NOW - 45 * DAY),  # three documents by mtime; the front-matter dates are older
    Filters(before=NOW - 50 * DAY),
    Filters(formats=("pdf",)),
    Filters(formats=("markdown", "text")),
    Filters(tags=("beta",)),
    Filters(
        source_glob="a/*", after=NOW - 200 * DAY, formats=("markdown", "text"), tags=("alpha",)
    ),
]


@pytest.fixture
def location(store: str | None) -> Location:
    return location_for(load_settings(collection="filtered"))


def _manifest() -> dict:
    return make_manifest("filtered", "fake", DIM, 60, {"chunk_size": 50, "chunk_overlap": 0})


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.describe())
def test_filters_return_exactly_the_k_best_matching_passages(
    location: Location, filters: Filters
) -> None:
    writer = location.create(_manifest())
    try:
        owner = _fill(writer)
    finally:
        writer.close()
    k = 10
    query = np.random.default_rng(99).normal(size=DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    reader = location.open()
    try:
        everything = {
            "dense": reader.dense(query, len(owner)),
            "lexical": reader.lexical(["harbour"], len(owner)),
        }
        filtered = {
            "dense": reader.dense(query, k, filters),
            "lexical": reader.lexical(["harbour"], k, filters),
        }
        matching = [n for n, spec in enumerate(SPECS) if _allowed(spec, filters)]
        assert reader.matching_documents(filters) == len(matching)
    finally:
        reader.close()
    for kind, ranking in everything.items():
        assert len(ranking) == len(owner) == len(SPECS) * PER_DOCUMENT
        by_hand = [i for i, _ in ranking if owner[i] in matching]
        assert [i for i, _ in filtered[kind]] == by_hand[:k], kind
        assert len(filtered[kind]) == min(k, len(matching) * PER_DOCUMENT)
        scores = dict(ranking)
        for i, score in filtered[kind]:
            assert score == pytest.approx(scores[i], rel=1e-5, abs=1e-6)
    if len(matching) <= 4:  # a filter applied to a plain top k would have kept fewer than k
        for ranking in everything.values():
            assert len([i for i, _ in ranking[:k] if owner[i] in matching]) < k


@pytest.mark.parametrize("few", [True, False], ids=["exact-for-few", "hnsw-iterative-scan"])
def test_postgres_filtered_search_above_the_exact_threshold(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, few: bool
) -> None:
    """Past EXACT_BELOW, a filter that allows few chunks is searched exactly, and one that
    allows many through the HNSW index scanning on: both give the k best matching."""
    import psycopg

    from ragcli.store import postgres as pgstore

    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    location = location_for(load_settings(collection="filtered"))
    manifest = _manifest()
    manifest["vectors"] = "float32"  # the plans below are those of a vector column
    writer = location.create(manifest)
    try:
        owner = _fill(writer)
        chunks = f"ragcli_{getattr(writer, 'id', 0)}_chunks"
    finally:
        writer.close()
    if not few:
        # With 72 rows the planner prefers the document_id indexes to HNSW: take them away.
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP INDEX {chunks}_document_id_idx")
            conn.execute(f"ALTER TABLE {chunks} DROP CONSTRAINT {chunks}_document_id_ordinal_key")
    monkeypatch.setattr(pgstore, "EXACT_BELOW", 1)
    monkeypatch.setattr(pgstore, "EXACT_FILTER_LIMIT", 1_000 if few else 0)
    monkeypatch.setattr(pgstore, "EF_SEARCH", 1)  # k candidates: the scan must go on for more
    query = np.random.default_rng(5).normal(size=DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    reader = location.open()
    try:
        everything = reader.dense(query, len(owner), exact=True)
        if not few:
            reader.conn.execute("SET enable_seqscan = off")  # 72 rows: else always a scan
        plans: list[str] = []
        rows = reader._rows

        def explained(sql: str, args=()):  # type: ignore[no-untyped-def]
            if sql.startswith("SELECT id, 1 - (embedding"):
                plans.append(" ".join(r[0] for r in rows("EXPLAIN " + sql, args)))
            return rows(sql, args)

        monkeypatch.setattr(reader, "_rows", explained)
        for filters in FILTERS:
            matching = {n for n, spec in enumerate(SPECS) if _allowed(spec, filters)}
            by_hand = [i for i, _ in everything if owner[i] in matching]
            assert [i for i, _ in reader.dense(query, 10, filters)] == by_hand[:10]
        assert len(plans) == len(FILTERS)
        assert all(("embedding_idx" in plan) != few for plan in plans), plans
    finally:
        reader.close()


def _drop_metadata_columns(location: Location, store_url: str | None, collection_id: int) -> None:
    """Make the collection look like one written before the date and tags columns."""
    if isinstance(location, FolderLocation):
        import sqlite3

        db = sqlite3.connect(location.directory / "meta.sqlite")
        db.execute("ALTER TABLE documents DROP COLUMN tags")
        db.execute("ALTER TABLE documents DROP COLUMN date")
        db.commit()
        db.close()
        return
    import psycopg

    assert store_url is not None
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute(
            f"ALTER TABLE ragcli_{collection_id}_documents DROP COLUMN tags, DROP COLUMN date"
        )


def test_a_collection_without_the_new_columns_still_searches(
    location: Location, store: str | None
) -> None:
    writer = location.create(_manifest())
    try:
        owner = _fill(writer)
        collection_id = getattr(writer, "id", 0)
    finally:
        writer.close()
    _drop_metadata_columns(location, store, collection_id)
    query = np.ones(DIM, np.float32) / DIM**0.5
    old_date = Filters(before=NOW - 105 * DAY)  # by mtime only: d11 (front matter: d08 too)
    reader = location.open()
    try:
        assert len(reader.dense(query, 100)) == len(owner)
        assert {h.source for h in reader.hits(reader.dense(query, 100, old_date))} == {"b/d11.txt"}
        assert reader.lexical(["harbour"], 5, Filters(tags=("alpha",))) == []
        assert reader.dense(query, 5, Filters(tags=("alpha",))) == []
        assert reader.matching_documents(Filters(tags=("alpha",))) == 0
        pdf = reader.hits(reader.lexical(["harbour"], 100, Filters("a/*", formats=("pdf",))))
        assert {h.source for h in pdf} == {"a/d01.pdf", "a/d04.pdf"}
        assert len(reader.documents()) == len(SPECS)
    finally:
        reader.close()
    # The next writer adds the columns back; what it then writes has its tags and date.
    writer = location.open(writable=True)
    try:
        document = Document(
            Path("/docs/new.md"), "new.md", "markdown", [Block("x")], "f" * 64, 10, NOW,
            date=NOW - 500 * DAY, tags=["alpha"],
        )  # fmt: skip
        document_id = writer.add_document(document, 1, None, None)
        writer.add_chunks(document_id, [Chunk("new-0", 0, "harbour new", 2)], query[None, :])
        writer.save()
    finally:
        writer.close()
    reader = location.open()
    try:
        tagged = reader.hits(reader.dense(query, 5, Filters(tags=("alpha",))))
        assert [h.source for h in tagged] == ["new.md"]
        dated = reader.hits(reader.dense(query, 100, Filters(before=NOW - 105 * DAY)))
        assert {h.source for h in dated} == {"b/d11.txt", "new.md"}
    finally:
        reader.close()


def test_a_collection_made_before_the_loader_columns_keeps_its_tags_and_dates(
    location: Location, store: str | None
) -> None:
    """A collection made before ``pages``/``ocr_pages``/``warnings`` (with ``date`` and
    ``tags``) is read as it is, its filters intact, and given them by its next writer."""
    writer = location.create(_manifest())
    try:
        owner = _fill(writer)
        collection_id = getattr(writer, "id", 0)
    finally:
        writer.close()
    drop = "DROP COLUMN pages, DROP COLUMN ocr_pages, DROP COLUMN warnings"
    if isinstance(location, FolderLocation):
        import sqlite3

        db = sqlite3.connect(location.directory / "meta.sqlite")
        for column in ("pages", "ocr_pages", "warnings"):
            db.execute(f"ALTER TABLE documents DROP COLUMN {column}")
        db.commit()
        db.close()
    else:
        import psycopg

        assert store is not None
        with psycopg.connect(store, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE ragcli_{collection_id}_documents {drop}")
    query = np.ones(DIM, np.float32) / DIM**0.5
    reader = location.open()
    try:
        tagged = reader.dense(query, 100, Filters(tags=("alpha",)))
        assert tagged and len(tagged) < len(owner)
        hits = reader.hits(reader.dense(query, 100))
        assert len(hits) == len(owner) and not any(h.ocr for h in hits)
        assert reader.counts()["files_with_warnings"] == 0
        assert all("warnings" not in d for d in reader.document_details())
    finally:
        reader.close()
    writer = location.open(writable=True)
    try:
        document = Document(
            Path("/docs/scan.pdf"), "scan.pdf", "pdf", [Block("x", page=2, ocr=True)],
            "e" * 64, 10, NOW, notes=["read by OCR: 1 of 2 page(s)"], pages=2,
        )  # fmt: skip
        document_id = writer.add_document(document, 1, None, None)
        writer.add_chunks(document_id, [Chunk("scan-0", 0, "x", 1, page=2)], query[None, :])
        writer.save()
    finally:
        writer.close()
    reader = location.open()
    try:
        counts = reader.counts()
        assert counts["files_with_warnings"] == 1 and counts["files_with_ocr"] == 1
        [scan] = [h for h in reader.hits(reader.dense(query, 100)) if h.source == "scan.pdf"]
        assert scan.ocr and scan.location == "p.2, OCR"
    finally:
        reader.close()


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    """Markdown with and without front matter, text files of different ages, one RST file."""
    root = tmp_path / "notes"
    (root / "team").mkdir(parents=True)
    hundred_days_ago = (date.today() - timedelta(days=100)).isoformat()
    (root / "release.md").write_text(
        f"---\ntitle: Release notes\ndate: {hundred_days_ago}\ntags: [Release, ops]\n---\n"
        "# Changes\n\nThe harbour tram timetable changed for the spring release.\n"
    )
    (root / "team" / "draft.md").write_text(
        "---\ntags: draft, ops\n---\n# Draft\n\nA draft about the harbour tram depot.\n"
    )
    (root / "broken.md").write_text(
        "---\ntitle: [unclosed\n---\n# Broken\n\nThe harbour tram bell is broken.\n"
    )
    (root / "old.txt").write_text("An old note on the harbour tram fares.\n")
    (root / "new.txt").write_text("A new note on the harbour tram fares.\n")
    (root / "guide.rst").write_text("Guide\n=====\n\nThe harbour tram guide for visitors.\n")
    now = time.time()
    os.utime(root / "old.txt", (now - 400 * DAY, now - 400 * DAY))
    os.utime(root / "team" / "draft.md", (now - 60 * DAY, now - 60 * DAY))
    return root


def _sources(*args: str) -> set[str]:
    result = run("search", "harbour tram", "-k", "20", "--json", *args)
    assert result.exit_code == 0, result.output
    return {Path(h["source"]).name for h in json.loads(result.stdout)["hits"]}


@pytest.mark.usefixtures("fake_models")
def test_search_and_ask_flags(notes: Path, store: str | None) -> None:
    assert run("ingest", str(notes), "-q").exit_code == 0
    every = {"release.md", "draft.md", "broken.md", "old.txt", "new.txt", "guide.rst"}
    assert _sources() == every
    # dates: the front matter's, else the file's mtime; ISO and relative forms
    assert _sources("--after", "30d") == {"broken.md", "new.txt", "guide.rst"}
    assert _sources("--before", "90d") == {"release.md", "old.txt"}
    assert _sources("--after", "10w", "--before", "1w") == {"draft.md"}
    today = date.today()
    assert _sources("--after", (today - timedelta(days=101)).isoformat(), "--before",
                    (today - timedelta(days=99)).isoformat()) == {"release.md"}  # fmt: skip
    cut = datetime.now(timezone.utc) - timedelta(days=200)
    assert _sources("--before", cut.isoformat(timespec="minutes")) == {"old.txt"}
    # types, by name or extension, comma-separated or repeated
    assert _sources("--type", "md") == {"release.md", "draft.md", "broken.md"}
    assert _sources("--type", "txt,rst") == {"old.txt", "new.txt", "guide.rst"}
    assert _sources("--type", ".markdown", "--type", "text") == every - {"guide.rst"}
    # tags: any of them, whatever the case
    assert _sources("--tag", "OPS") == {"release.md", "draft.md"}
    assert _sources("--tag", "release", "--tag", "draft") == {"release.md", "draft.md"}
    # with --path, every filter must hold
    assert _sources("--path", "*team/*", "--tag", "ops") == {"draft.md"}
    assert _sources("--path", "*.md", "--after", "30d") == {"broken.md"}
    # --batch shares the flags
    batch = run("search", "--batch", "-", "--tag", "draft", input="harbour tram\ndepot\n")
    assert batch.exit_code == 0, batch.output
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    assert len(lines) == 2
    assert {Path(h["source"]).name for line in lines for h in line["hits"]} == {"draft.md"}
    # ask: its passages come from the filtered documents only
    asked = run("ask", "harbour tram", "--json", "--no-abstain", "--tag", "release")
    assert asked.exit_code in (0, 7), asked.output
    assert {Path(p["source"]).name for p in json.loads(asked.stdout)["passages"]} == {"release.md"}
    batch = run("ask", "--batch", "-", "--no-abstain", "--type", "rst", input="harbour tram\n")
    assert batch.exit_code == 0, batch.output
    (line,) = [json.loads(line) for line in batch.stdout.splitlines()]
    assert {Path(p["source"]).name for p in line["passages"]} == {"guide.rst"}
    # the front matter's title is the document's title
    listed = json.loads(run("list", "--json").stdout)
    titles = {Path(d["source"]).name: d["title"] for d in listed["documents"]}
    assert titles["release.md"] == "Release notes" and titles["broken.md"] == "Broken"


@pytest.mark.usefixtures("fake_models")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--after", "yesterday"], "--after 'yesterday' is not a date"),
        (["--before", "2024-02-30"], "--before '2024-02-30' is not a date"),
        (["--after", "2024-06-01", "--before", "2024-05-01"], "is not earlier than --before"),
        (["--type", "pages"], "unknown document type 'pages' (--type)"),
        (["--tag", " "], "--tag needs a tag"),
    ],
)
def test_bad_filter_values_exit_2(corpus: Path, args: list[str], message: str) -> None:
    assert run("ingest", str(corpus), "-q").exit_code == 0
    for command in (["search", "bridge"], ["ask", "bridge"], ["search", "--batch", "-"]):
        result = run(*command, *args, input="bridge\n")
        assert result.exit_code == EXIT_USAGE, result.output
        assert message in result.stderr and result.stdout == ""


@pytest.mark.usefixtures("fake_models")
def test_no_matching_document_exits_3_naming_the_filters(notes: Path, store: str | None) -> None:
    assert run("ingest", str(notes), "-q").exit_code == 0
    for command in (["search", "harbour"], ["ask", "harbour"], ["search", "--batch", "-"]):
        result = run(*command, "--tag", "nothing", "--type", "pdf", input="harbour\n")
        assert result.exit_code == EXIT_NO_COLLECTION, result.output
        assert (
            "no document of collection 'default' matches the filters (type pdf, tag nothing)"
            in result.stderr
        )
        assert "loosen the filters" in result.stderr and result.stdout == ""


# -- the server and the MCP tools ---------------------------------------------------------------


def test_server_fields_are_checked_by_the_same_parser() -> None:
    assert {"after", "before", "type", "tag", "path"} <= SEARCH_FIELDS
    query = parse_query(
        {"question": "q", "after": "2024-05-01", "type": "pdf,md", "tag": ["Ops", "x"]}, "docs"
    )
    may = datetime(2024, 5, 1, tzinfo=timezone.utc).timestamp()
    assert query.filters == Filters(after=may, formats=("pdf", "markdown"), tags=("ops", "x"))
    assert parse_query({"question": "q"}, "docs").filters is None
    assert parse_query({"question": "q", "path": "*.md"}, "docs").filters == Filters("*.md")
    bad = [
        ({"after": "soon"}, "after 'soon' is not a date"),
        ({"before": 20240501}, "before must be a date"),
        ({"type": "pages"}, "unknown document type 'pages' (type)"),
        ({"type": ["pdf", 3]}, "type must be a string or a list of strings"),
        ({"tag": {"a": 1}}, "tag must be a string or a list of strings"),
        ({"after": "2024-06-01", "before": "2024-05-01"}, "is not earlier than before"),
    ]
    for fields, message in bad:
        with pytest.raises(UsageError) as caught:
            parse_query({"question": "q", **fields}, "docs")
        assert message in caught.value.message
        status, body = error_body(caught.value)
        assert status == 400 and body["error"]["code"] == "bad_request"


@pytest.mark.usefixtures("fake_models")
def test_service_searches_with_filters_and_refuses_no_match(notes: Path) -> None:
    from ragcli.errors import NoMatchError
    from ragcli.pipeline.serving import Service

    assert run("ingest", str(notes), "-q").exit_code == 0
    service = Service(load_settings())
    try:
        found = service.search(parse_query({"question": "harbour tram", "tag": "ops"}, "default"))
        assert {Path(h.source).name for h in found.hits} == {"release.md", "draft.md"}
        # the pooled searcher forgets the filters of the request before
        again = service.search(parse_query({"question": "harbour tram", "k": 10}, "default"))
        assert len({h.source for h in again.hits}) == 6
        with pytest.raises(NoMatchError) as caught:
            service.search(parse_query({"question": "x", "type": ["pdf"]}, "default"))
        status, body = error_body(caught.value)
        assert status == 404 and body["error"]["code"] == "no_match"
        assert "matches the filters (type pdf)" in body["error"]["message"]
    finally:
        service.close()


def test_http_and_mcp_take_the_filter_fields(notes: Path) -> None:
    """One real server process and one MCP session: filters work, bad ones are 400s and tool
    errors."""
    import anyio

    from . import test_mcp, test_serve

    test_serve.fakecli("ingest", str(notes), "-c", "docs")
    server = test_serve.Server("-c", "docs")
    try:
        ok = server.post("/search", {"question": "harbour tram", "type": "md", "tag": ["ops"]})
        assert ok.status_code == 200, ok.text
        assert {Path(h["source"]).name for h in ok.json()["hits"]} == {"release.md", "draft.md"}
        for body in ({"after": "soon"}, {"type": "pages"}, {"tag": 3}):
            for route in ("/search", "/ask"):
                response = server.post(route, {"question": "harbour", **body})
                assert response.status_code == 400, response.text
                assert response.json()["error"]["code"] == "bad_request"
        none = server.post("/search", {"question": "harbour", "tag": "nothing"})
        assert none.status_code == 404 and none.json()["error"]["code"] == "no_match"
    finally:
        assert server.stop() == 0

    async def session() -> None:
        async with test_mcp.mcp_server("-c", "docs") as client:
            found = await test_mcp.call(
                client, "search", question="harbour tram", type="txt", after="30d"
            )
            assert {Path(h["source"]).name for h in found["hits"]} == {"new.txt"}
            result = await client.call_tool("ask", {"question": "harbour", "before": "later"})
            assert result.is_error and "before 'later' is not a date" in test_mcp.text(result)

    anyio.run(session)
