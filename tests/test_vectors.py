"""similarity and embed: the core in ragcli/vectors.py and the two commands' output modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli import pipeline, vectors
from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import RagcliError, UsageError
from ragcli.models import embedding
from ragcli.models.embedding import BUNDLED_EMBEDDER

from .conftest import FakeEmbedder

runner = CliRunner()
TRAMS = ["the harbour tram is green", "a green tram in the harbour", "the observatory opened"]


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "open_embedder", FakeEmbedder)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make stdout look like a terminal to the renderers (CliRunner captures it otherwise)."""
    from rich.console import Console

    from ragcli.console import streams

    monkeypatch.setattr(
        streams, "out", lambda: Console(force_terminal=True, no_color=True, width=120)
    )


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


# -- choosing the embedder ---------------------------------------------------------------------


def test_embedder_is_bundled_chosen_or_the_collections(corpus: Path, monkeypatch) -> None:
    assert vectors.choose_embedder(load_settings()).name == BUNDLED_EMBEDDER
    chosen = vectors.choose_embedder(load_settings(embed_model="org/model", query_prompt="q: "))
    assert (chosen.name, chosen.query_prompt) == ("org/model", "q: ")

    monkeypatch.setattr(embedding, "open_embedder", FakeEmbedder)
    pipeline.ingest(load_settings(document_prompt="passage: "), [str(corpus / "alpha.txt")])
    from_collection = vectors.choose_embedder(load_settings())
    assert from_collection.name == "fake-embedder"
    assert (from_collection.query_prompt, from_collection.document_prompt) == ("", "passage: ")
    # another embedder, asked for by name, is used as is: nothing is written to the collection
    assert vectors.choose_embedder(load_settings(embed_model="org/model")).name == "org/model"
    # another collection that does not exist: the bundled embedder (the fake names itself)
    assert vectors.choose_embedder(load_settings(collection="other")).name == "fake-embedder"
    monkeypatch.setattr(embedding, "open_embedder", embedding.Embedder)  # the real one again
    assert vectors.choose_embedder(load_settings(collection="other")).name == BUNDLED_EMBEDDER


# -- similarity --------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_embedder")
def test_pairwise_similarity_is_a_symmetric_cosine_matrix() -> None:
    result = vectors.similarity(load_settings(), TRAMS)
    matrix = np.array(result.matrix)
    assert matrix.shape == (3, 3) and result.scores == []
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    assert matrix[0, 1] > 0.5 > matrix[0, 2]
    expected = FakeEmbedder().embed(TRAMS)
    np.testing.assert_allclose(matrix, expected @ expected.T, atol=1e-6)


@pytest.mark.usefixtures("fake_embedder")
def test_to_compares_each_text_with_one_encoded_as_a_query() -> None:
    plain = vectors.similarity(load_settings(), ["zebra"], to="nothing in common")
    assert plain.scores == [0.0] and plain.matrix == []
    # the query prompt goes before the --to text only: it shares a word with the document now
    prompted = vectors.similarity(load_settings(query_prompt="zebra "), ["zebra"], to="nothing")
    assert prompted.scores[0] > 0.5
    as_query = vectors.similarity(
        load_settings(query_prompt="zebra "), ["zebra"], to="zebra", role="query"
    )
    assert as_query.scores[0] == pytest.approx(1.0)


@pytest.mark.usefixtures("fake_embedder")
def test_similarity_needs_two_texts_or_to() -> None:
    with pytest.raises(UsageError, match="at least two"):
        vectors.similarity(load_settings(), ["one"])
    with pytest.raises(UsageError):
        vectors.similarity(load_settings(), [], to="x")


# -- embed -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_embedder")
def test_embed_normalizes_by_default_and_uses_the_roles_prompt() -> None:
    result = vectors.embed(load_settings(), ["tram tram harbour"])
    assert result.vectors.shape == (1, 64) and result.vectors.dtype == np.float32
    assert np.linalg.norm(result.vectors[0]) == pytest.approx(1.0)
    raw = vectors.embed(load_settings(), ["tram tram harbour"], normalize=False)
    assert sorted(raw.vectors[0][raw.vectors[0] > 0].tolist()) == [1.0, 2.0]
    settings = load_settings(query_prompt="zebra ")
    as_query = vectors.embed(settings, ["tram"], role="query").vectors[0]
    as_document = vectors.embed(settings, ["tram"]).vectors[0]
    np.testing.assert_allclose(as_query, FakeEmbedder().embed(["zebra tram"])[0])
    np.testing.assert_allclose(as_document, FakeEmbedder().embed(["tram"])[0])


@pytest.mark.usefixtures("fake_embedder")
def test_npy_round_trip_keeps_the_file_name(tmp_path: Path) -> None:
    result = vectors.embed(load_settings(), TRAMS)
    target = tmp_path / "vectors.bin"  # np.save would have written vectors.bin.npy
    vectors.save_npy(result, target)
    loaded = np.load(target, allow_pickle=False)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, result.vectors)
    with pytest.raises(RagcliError, match="cannot write"):
        vectors.save_npy(result, tmp_path / "missing" / "v.npy")


# -- the commands ------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_embedder")
def test_similarity_prints_tsv_when_piped() -> None:
    result = run("similarity", *TRAMS)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["", *TRAMS]
    assert [row.split("\t")[0] for row in rows] == TRAMS
    matrix = [[float(cell) for cell in row.split("\t")[1:]] for row in rows]
    assert matrix[0][0] == 1.0 and matrix[0][1] == matrix[1][0] > 0.5


@pytest.mark.usefixtures("fake_embedder", "terminal")
def test_similarity_prints_a_table_on_a_terminal() -> None:
    result = run("similarity", *TRAMS)
    assert result.exit_code == 0, result.output
    assert "cosine similarity, fake-embedder" in result.stdout
    assert "┃" in result.stdout and "1.000" in result.stdout
    assert "\t" not in result.stdout and result.stderr == ""
    to = run("similarity", "--to", "green tram", *TRAMS)
    assert "to: green tram" in to.stdout and "score" in to.stdout


@pytest.mark.usefixtures("fake_embedder")
def test_similarity_json_and_texts_from_stdin() -> None:
    result = run("similarity", "--json", "--to", "green tram", input="green harbour\n\nred car\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["texts"] == ["green harbour", "red car"] and data["to"] == "green tram"
    assert data["embedder"] == "fake-embedder" and data["encoded_as"] == "document"
    assert data["scores"][0] > data["scores"][1] == 0.0
    piped = run("similarity", "--to", "green tram", "-", input="green harbour\nred car\n")
    first, second = (line.split("\t") for line in piped.stdout.splitlines())
    assert second == ["0.0000", "red car"] and float(first[0]) > 0 and first[1] == "green harbour"


@pytest.mark.usefixtures("fake_embedder")
@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("similarity", "only one"), None, "at least two texts"),
        (("similarity", "-"), "\n\n", "no text on standard input"),
        (("similarity", "a", ""), None, "a TEXT is empty"),
        (("embed", "x", "--format", "npy"), None, "--format npy needs --output"),
        (("embed", "x", "--as", "answer"), None, "Invalid value"),
    ],
)
def test_bad_input_exits_2(args: tuple[str, ...], stdin: str | None, message: str) -> None:
    result = run(*args, input=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


@pytest.mark.usefixtures("fake_embedder")
def test_embed_prints_json_lines() -> None:
    result = run("embed", "green tram", "red car")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == ["green tram", "red car"]
    assert len(records[0]["vector"]) == 64
    assert np.linalg.norm(records[0]["vector"]) == pytest.approx(1.0, abs=1e-6)
    raw = run("embed", "--no-normalize", input="tram tram\n")
    assert max(json.loads(raw.stdout)["vector"]) == 2.0


@pytest.mark.usefixtures("fake_embedder")
def test_embed_writes_npy_and_jsonl_files(tmp_path: Path) -> None:
    target = tmp_path / "out.npy"
    result = run("embed", "--format", "npy", "-o", str(target), input="green tram\nred car\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "wrote 2 vectors of 64 dimensions" in result.stderr
    np.testing.assert_allclose(np.load(target), FakeEmbedder().embed(["green tram", "red car"]))
    lines = tmp_path / "out.jsonl"
    quiet = run("embed", "green tram", "-o", str(lines), "-q")
    assert quiet.stdout == "" and quiet.stderr == ""
    assert json.loads(lines.read_text())["text"] == "green tram"
    denied = run("embed", "x", "-o", str(tmp_path / "no" / "such" / "dir.npy"))
    assert denied.exit_code == 1 and "cannot write" in denied.stderr


@pytest.mark.usefixtures("fake_models")
def test_prompt_options_reach_the_collection(corpus: Path) -> None:
    result = run("ingest", str(corpus / "alpha.txt"), "--document-prompt", "passage: ", "-q")
    assert result.exit_code == 0, result.output
    manifest = json.loads(
        (load_settings().collection_dir / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["embedder"]["document_prompt"] == "passage: "
    refused = run("search", "bridge", "--document-prompt", "doc: ")
    assert refused.exit_code == 5
    assert "built with document-prompt 'passage: '" in refused.stderr and refused.stdout == ""
