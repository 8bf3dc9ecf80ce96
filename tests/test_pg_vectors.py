"""The PostgreSQL store's kinds of vectors on a real server: float32 (``vector``), int8
(``halfvec``) and binary (``halfvec`` with an HNSW index on its sign bits, rescored by cosine).

Every kind stores, searches (exactly and through its index, with and without filters) and
returns cosines of the stored vectors; a collection keeps its kind, and a rebuild converts it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from ragcli import pipeline
from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import IncompatibleCollectionError
from ragcli.filters import Filters
from ragcli.records import Chunk, Document
from ragcli.store import postgres as pgstore
from ragcli.store.common import make_manifest
from ragcli.store.location import location_for, opened
from ragcli.store.postgres import PgStore

pytestmark = pytest.mark.usefixtures("fake_models")
runner = CliRunner()
KINDS = ("float32", "int8", "binary")
COLUMNS = {"float32": "vector(32)", "int8": "halfvec(32)", "binary": "halfvec(32)"}
OPERATORS = {
    "float32": "vector_cosine_ops",
    "int8": "halfvec_cosine_ops",
    "binary": "bit_hamming_ops",
}
DIMENSION = 32
DOCUMENTS, PER_DOCUMENT = 12, 50


def run(*args: str):
    return runner.invoke(app, list(args))


def _manifest(kind: str | None) -> dict:
    manifest = make_manifest(
        "kb", "fake-embedder", DIMENSION, 60, {"chunk_size": 200, "chunk_overlap": 32}
    )
    if kind is None:
        del manifest["vectors"]  # a collection made before kinds of vectors
    else:
        manifest["vectors"] = kind
    return manifest


def _fill(store: PgStore, seed: int = 0) -> np.ndarray:
    """Random unit vectors in documents "even/docN" and "odd/docN"; returns them by chunk id - 1."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(DOCUMENTS * PER_DOCUMENT, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for number in range(DOCUMENTS):
        source = f"{'odd' if number % 2 else 'even'}/doc{number}.txt"
        document = Document(
            path=Path(f"/corpus/{source}"), source=source, format="text", blocks=[],
            sha256=f"{number}", size=1, mtime=1.0, key=f"/corpus/{source}", doc_id=source,
        )  # fmt: skip
        document_id = store.add_document(document, PER_DOCUMENT)
        chunks = [
            Chunk(f"{source}:{i}", i, f"passage {i} of {source}", 4) for i in range(PER_DOCUMENT)
        ]
        rows = slice(number * PER_DOCUMENT, (number + 1) * PER_DOCUMENT)
        store.add_chunks(document_id, chunks, vectors[rows])
    store.save()
    return vectors


def _schema(url: str, store: PgStore) -> tuple[str, str]:
    with psycopg.connect(url) as conn:
        column = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = 'embedding'",
            (f"ragcli_{store.id}_chunks",),
        ).fetchone()[0]
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'",
            (f"ragcli_{store.id}_chunks",),
        ).fetchone()[0]
    return column, index


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("exact", [True, False])
def test_each_kind_finds_stored_vectors_with_their_cosines(
    postgres_url: str, kind: str, exact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PgStore.create(postgres_url, "kb", _manifest(kind)) as writer:
        vectors = _fill(writer)
    column, index = _schema(postgres_url, writer)
    assert column == COLUMNS[kind] and OPERATORS[kind] in index
    if kind == "binary":
        assert "binary_quantize(embedding)" in index and "bit(32)" in index
    # Through the HNSW index from the first chunk on (EXACT_BELOW 1), or a sequential scan.
    monkeypatch.setattr(pgstore, "EXACT_BELOW", 1 if not exact else 10**9)
    monkeypatch.setattr(pgstore, "EXACT_FILTER_LIMIT", 0 if not exact else 10**9)
    with PgStore(postgres_url, "kb") as reader:
        assert reader.kind == kind
        stored = reader.vectors(list(range(1, len(vectors) + 1)))
        assert stored.dtype == np.float32 and stored.shape == vectors.shape
        # float32 keeps the vectors as given; halfvecs within 2**-11 of each component
        assert np.allclose(stored, vectors, atol=1e-7 if kind == "float32" else 1e-3)
        for chunk_id in (1, 77, 301, 599):
            query = vectors[chunk_id - 1]
            found = reader.dense(query, 10)
            assert found[0][0] == chunk_id and found[0][1] == pytest.approx(1.0, abs=1e-3)
            # The scores are the cosines of the stored vectors, best first.
            cosines = stored @ query / np.linalg.norm(stored, axis=1)
            for i, score in found:
                assert score == pytest.approx(float(cosines[i - 1]), abs=1e-5)
            assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
            if exact:  # the true top 10
                assert {i for i, _ in found} == set(np.argsort(-cosines)[:10] + 1)
            # Filtered: only chunks of the documents allowed, found among them.
            odd = reader.dense(query, 10, Filters("odd/*"))
            assert len(odd) == 10
            assert all(((i - 1) // PER_DOCUMENT) % 2 == 1 for i, _ in odd)
            if ((chunk_id - 1) // PER_DOCUMENT) % 2 == 1:
                assert odd[0][0] == chunk_id
            allowed = np.array([((i // PER_DOCUMENT) % 2 == 1) for i in range(len(vectors))])
            if exact:
                best = np.argsort(-np.where(allowed, cosines, -2))[:10] + 1
                assert {i for i, _ in odd} == set(best)
        description = reader.describe_index()
        assert description.vectors == kind
        assert description.kind == ("exact" if exact else "approximate")
        assert reader.disk_bytes() > 0
        assert reader.check() == len(vectors)


@pytest.mark.parametrize("kind", KINDS)
def test_a_search_takes_the_path_chosen_for_it(postgres_url: str, kind: str) -> None:
    """An approximate search goes through the HNSW index and an exact one does not, whatever
    the planner would pick for a small table, also once psycopg prepared the statements (after
    5 runs), whose plans would otherwise stay as first made."""
    with PgStore.create(postgres_url, "kb", _manifest(kind)) as writer:
        vectors = _fill(writer)
    with PgStore(postgres_url, "kb") as reader:
        index = reader._rows(
            "SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = %s::regclass "
            "AND a.amname = 'hnsw'",
            (f"ragcli_{reader.id}_chunks",),
        )[0][0]
        count = "SELECT pg_stat_get_xact_numscans(%s)"  # scans not yet sent to the statistics
        for attempt in range(8):
            for exact in (False, True):
                for filters in (None, Filters("odd/*")):
                    with reader.snapshot():  # one transaction: no statistics sent meanwhile
                        before = reader._rows(count, (index,))[0][0]
                        found = reader.dense(vectors[attempt], 5, filters, exact=exact)
                        scans = reader._rows(count, (index,))[0][0] - before
                    assert len(found) == 5
                    assert scans == (0 if exact else 1), (attempt, exact, filters)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_through_ingest_search_and_status(
    corpus: Path, postgres_url: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    done = run("ingest", str(corpus), "--vectors", kind)
    assert done.exit_code == 0, done.output
    status = json.loads(run("status", "--json").stdout)
    assert status["documents"] == 3 and status["index"]["vectors"] == kind
    monkeypatch.setattr(pgstore, "EXACT_BELOW", 1)  # through the index
    status = json.loads(run("status", "--json").stdout)
    assert status["index"]["type"] == "HNSW" and status["index"]["vectors"] == kind
    for mode in ("dense", "hybrid"):
        found = pipeline.search(load_settings(mode=mode), "who founded the kettle works", top_k=3)
        assert "Ada Pell" in found.hits[0].text
        assert 0 < found.hits[0].score <= 1.0 + 1e-6  # a cosine
    only_rst = pipeline.search(load_settings(), "kettle works founded", 5, Filters("*.rst"))
    assert only_rst.hits and all(h.source.endswith(".rst") for h in only_rst.hits)
    listed = json.loads(run("collections", "--json").stdout)["collections"]
    assert listed[0]["disk_bytes"] > 0


def test_a_collection_keeps_its_kind_and_a_rebuild_converts_it(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    assert run("ingest", str(corpus), "--vectors", "int8").exit_code == 0
    # Made at the same time by another ingester with another kind: refused, clearly.
    with PgStore(postgres_url, "default") as reader:
        made = reader.manifest
    with pytest.raises(IncompatibleCollectionError) as refused:
        PgStore.create(postgres_url, "default", {**made, "vectors": "binary"})
    assert "keeps int8 vectors, not binary" in refused.value.message
    assert "--rebuild --vectors binary" in (refused.value.hint or "")
    # An ingest that asks for another kind is refused before anything is written.
    other = run("ingest", str(corpus), "--vectors", "binary")
    assert other.exit_code != 0 and "keeps int8 vectors, not binary" in other.stderr
    # A rebuild converts it, readers then see the new kind.
    reader = PgStore(postgres_url, "default")
    assert reader.kind == "int8"
    assert run("ingest", "--rebuild", "--vectors", "binary").exit_code == 0
    assert reader.dense(reader.vectors([1])[0], 1)[0][1] == pytest.approx(1.0, abs=1e-3)
    assert reader.kind == "binary" and reader.manifest["vectors"] == "binary"
    reader.close()
    with opened(location_for(load_settings())) as store:
        assert isinstance(store, PgStore)
        assert _schema(postgres_url, store)[0] == "halfvec(64)"
        assert store.check() > 0


def test_a_collection_from_before_kinds_is_float32(postgres_url: str) -> None:
    with PgStore.create(postgres_url, "kb", _manifest(None)) as writer:
        vectors = _fill(writer)
    with PgStore(postgres_url, "kb") as reader:
        assert "vectors" not in reader.manifest and reader.kind == "float32"
        assert _schema(postgres_url, reader)[0] == "vector(32)"
        assert reader.dense(vectors[5], 1)[0][0] == 6
    with pytest.raises(IncompatibleCollectionError, match="keeps float32 vectors, not int8"):
        PgStore.create(postgres_url, "kb", _manifest("int8"))


def test_an_unknown_kind_is_refused(postgres_url: str) -> None:
    with pytest.raises(IncompatibleCollectionError, match="keeps pq vectors"):
        PgStore.create(postgres_url, "kb", _manifest("pq"))
    with psycopg.connect(postgres_url) as conn:  # nothing was made, not even the catalogue
        assert conn.execute("SELECT to_regclass('ragcli_collections')").fetchone()[0] is None
