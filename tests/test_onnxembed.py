"""The ONNX export of the embedder and the torch-free query path, with tiny models built here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.errors import UsageError
from ragcli.models import onnxcache, onnxexport
from ragcli.models.embedding import Embedder
from ragcli.models.onnxcache import export_dir, find_export
from ragcli.models.onnxembed import OnnxEmbedder, onnx_query_embedder
from ragcli.models.onnxexport import ExportError, export_embedder

from .conftest import REPO
from .test_embedding import tiny_sentence_transformer

PROMPTS = {"query": "query: ", "document": "", "passage": "passage: "}
HEAVY = ("torch", "transformers", "sentence_transformers")
TEXTS = [
    "Who was the lighthouse keeper?",
    "lamp oil",
    "The kettle works were founded by Ada Pell in 1870, and made copper kettles and brass taps.",
    "Zürich: naïve café, 12.50 CHF!",
    " ".join(["the lamp burned whale oil until 1901"] * 60),  # longer than the model's limit
]


@pytest.fixture(scope="module")
def prompted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sentence_transformer(tmp_path_factory.mktemp("prompted"), PROMPTS)


@pytest.fixture(scope="module")
def exported(prompted_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model cache holding an export of ``prompted_model``."""
    cache = tmp_path_factory.mktemp("models")
    export = export_embedder(Embedder(str(prompted_model)), cache, TEXTS)
    assert export.made and export.min_cosine >= 1 - 1e-3
    return cache


def _least_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def _onnx(cache: Path, model: Path, query_prompt: str | None = None) -> OnnxEmbedder:
    found = onnx_query_embedder(
        load_settings(models_dir=cache), str(model.resolve()), query_prompt, None
    )
    assert found is not None and found.encoder is not None and found.backend == "onnx"
    return found


def test_export_gives_the_models_vectors(prompted_model: Path, exported: Path) -> None:
    torch_embedder = Embedder(str(prompted_model))
    onnx_embedder = _onnx(exported, prompted_model)
    folder, meta = find_export(exported, torch_embedder.name) or (None, {})
    assert folder == export_dir(exported, torch_embedder.name)
    assert meta["max_length"] == 128 and meta["dimension"] == 32
    assert meta["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    expected = torch_embedder.embed_queries(TEXTS)
    got = onnx_embedder.embed_queries(TEXTS)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert _least_cosine(got, expected) >= 1 - 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    raw = onnx_embedder.embed_queries(TEXTS[:2], normalize=False)
    np.testing.assert_allclose(
        raw, torch_embedder.embed_queries(TEXTS[:2], normalize=False), rtol=1e-3, atol=1e-4
    )
    assert onnx_embedder.embed_queries([]).shape == (0, 32)
    # one text alone (no padding) gives the same vector as in a batch
    np.testing.assert_allclose(onnx_embedder.embed_queries([TEXTS[1]])[0], got[1], atol=1e-5)


def test_query_prompts_are_applied_as_by_the_model(prompted_model: Path, exported: Path) -> None:
    # None: the model's own query prompt, read from the export without loading the model
    declared = _onnx(exported, prompted_model)
    assert declared.query_prompt == "query: " and "model" not in declared.__dict__
    for given in (None, "", "Represent this question: "):
        torch_vectors = Embedder(str(prompted_model), query_prompt=given).embed_queries(TEXTS)
        onnx_vectors = _onnx(exported, prompted_model, given).embed_queries(TEXTS)
        assert _least_cosine(onnx_vectors, torch_vectors) >= 1 - 1e-3
    with_prompt = _onnx(exported, prompted_model).embed_queries(TEXTS[:1])
    without = _onnx(exported, prompted_model, "").embed_queries(TEXTS[:1])
    assert _least_cosine(with_prompt, without) < 0.9999


def test_dense_and_normalize_modules_are_part_of_the_export(tmp_path: Path) -> None:
    model = tiny_sentence_transformer(tmp_path / "dense", {}, dense=True)
    export = export_embedder(Embedder(str(model)), tmp_path / "models", TEXTS)
    assert export.made
    assert json.loads((export.folder / "export.json").read_text())["dimension"] == 16
    expected = Embedder(str(model)).embed_queries(TEXTS, normalize=False)
    got = _onnx(tmp_path / "models", model).embed_queries(TEXTS, normalize=False)
    assert got.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # Normalize()
    assert _least_cosine(got, expected) >= 1 - 1e-3


def test_an_existing_export_is_reused(prompted_model: Path, exported: Path) -> None:
    before = (export_dir(exported, str(prompted_model.resolve())) / "model.onnx").stat()
    again = export_embedder(Embedder(str(prompted_model)), exported)
    assert not again.made
    after = (again.folder / "model.onnx").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_no_export_without_onnxruntime_or_when_off(
    prompted_model: Path, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = str(prompted_model.resolve())
    assert onnx_query_embedder(load_settings(models_dir=tmp_path), name) is None  # no export
    assert onnx_query_embedder(load_settings(models_dir=exported, onnx="off"), name) is None
    monkeypatch.setenv("RAGCLI_ONNX", "off")
    assert onnx_query_embedder(load_settings(models_dir=exported), name) is None
    monkeypatch.delenv("RAGCLI_ONNX")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert onnx_query_embedder(load_settings(models_dir=exported), name) is None
    with pytest.raises(ExportError, match="onnxruntime is not installed"):
        export_embedder(Embedder(name), tmp_path / "models")
    assert not (tmp_path / "models" / "onnx").exists()
    with pytest.raises(UsageError, match="unknown onnx setting"):
        load_settings(onnx="maybe")


def test_an_export_that_disagrees_with_the_model_is_not_kept(
    prompted_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnxexport, "MIN_COSINE", 1.5)  # no export can agree this well
    with pytest.raises(ExportError, match="differ from the model's"):
        export_embedder(Embedder(str(prompted_model)), tmp_path, TEXTS)
    assert list((tmp_path / "onnx").iterdir()) == []  # no export, no leftovers
    assert find_export(tmp_path, str(prompted_model.resolve())) is None


def test_a_model_that_cannot_be_exported_is_an_export_error(
    prompted_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = Embedder(str(prompted_model))
    monkeypatch.setattr(type(embedder.model.tokenizer), "is_fast", False, raising=False)
    with pytest.raises(ExportError, match="not a fast"):
        export_embedder(embedder, tmp_path)
    assert list((tmp_path / "onnx").iterdir()) == []


def test_changed_model_files_retire_the_export(prompted_model: Path, tmp_path: Path) -> None:
    model = tiny_sentence_transformer(tmp_path / "model", PROMPTS)
    name = str(model.resolve())
    export_embedder(Embedder(name), tmp_path / "models", TEXTS)
    assert find_export(tmp_path / "models", name) is not None
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert find_export(tmp_path / "models", name) is None
    assert onnx_query_embedder(load_settings(models_dir=tmp_path / "models"), name) is None
    # what exports killed midway left: removed an hour on, not before (one may be running)
    folder = export_dir(tmp_path / "models", name)
    stale, recent = (folder.with_name(f".new-{folder.name}-{n}") for n in ("a1", "b2"))
    for leftover in (stale, recent):
        leftover.mkdir()
        (leftover / "model.onnx").write_bytes(b"partial")
    os.utime(stale, (0, 0))
    assert export_embedder(Embedder(name), tmp_path / "models", TEXTS).made  # made anew
    assert not stale.exists() and recent.exists()


def test_an_export_that_will_not_open_falls_back_to_torch(
    prompted_model: Path, exported: Path, tmp_path: Path
) -> None:
    import shutil

    name = str(prompted_model.resolve())
    cache = tmp_path / "models"
    shutil.copytree(exported, cache)
    (export_dir(cache, name) / "model.onnx").write_bytes(b"not a graph")
    embedder = onnx_query_embedder(load_settings(models_dir=cache), name)
    assert embedder is not None
    assert embedder.encoder is None and embedder.backend == "torch"
    expected = Embedder(name).embed_queries(TEXTS[:2])
    np.testing.assert_allclose(embedder.embed_queries(TEXTS[:2]), expected, atol=1e-6)


def test_ingest_exports_once_and_search_uses_it(prompted_model: Path, corpus: Path) -> None:
    settings = load_settings(embed_model=str(prompted_model))
    pipeline.ingest(settings, [str(corpus / "alpha.txt")])
    name = str(prompted_model.resolve())
    found = find_export(settings.model_cache_dir, name)
    assert found is not None
    made = (found[0] / "model.onnx").stat().st_mtime_ns
    pipeline.ingest(settings, [str(corpus)])  # embeds more; the export stays as it was
    assert (found[0] / "model.onnx").stat().st_mtime_ns == made
    with pipeline.Searcher(load_settings()) as searcher:
        assert isinstance(searcher.embedder, OnnxEmbedder) and searcher.embedder.backend == "onnx"
    with pipeline.Searcher(load_settings(onnx="off")) as searcher:
        assert searcher.embedder.backend == "torch"


def test_an_export_problem_never_fails_an_ingest(
    prompted_model: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnxexport, "_write_export", broken)
    settings = load_settings(embed_model=str(prompted_model))
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.added) == 3
    assert find_export(settings.model_cache_dir, str(prompted_model.resolve())) is None
    result = pipeline.search(load_settings(), "lighthouse keeper")
    assert result.hits  # with torch


def test_a_failed_export_is_not_tried_again_until_the_model_changes(
    prompted_model: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def broken(*args: object) -> None:
        calls.append(1)
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnxexport, "_write_export", broken)
    settings = load_settings(embed_model=str(prompted_model))
    name = str(prompted_model.resolve())
    pipeline.ingest(settings, [str(corpus / "alpha.txt")])
    assert len(calls) == 1
    assert "exporter crashed" in (onnxcache.failed_export(settings.model_cache_dir, name) or "")
    pipeline.ingest(settings, [str(corpus)])  # embeds more, but the export would fail again
    assert len(calls) == 1
    config = prompted_model / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    assert onnxcache.failed_export(settings.model_cache_dir, name) is None  # files changed
    (corpus / "delta.txt").write_text("The ferry to Osk ran twice a day.\n")
    pipeline.ingest(settings, [str(corpus)])
    assert len(calls) == 2
    monkeypatch.undo()
    export_embedder(Embedder(name), settings.model_cache_dir)  # as models prepare does
    assert onnxcache.failed_export(settings.model_cache_dir, name) is None
    assert find_export(settings.model_cache_dir, name) is not None


def test_a_reingest_with_nothing_to_embed_never_imports_torch(
    prompted_model: Path, corpus: Path, ragcli_home: Path
) -> None:
    pipeline.ingest(load_settings(embed_model=str(prompted_model)), [str(corpus)])
    alpha = corpus / "alpha.txt"
    os.utime(alpha, (alpha.stat().st_atime, alpha.stat().st_mtime + 5))  # touched, same bytes
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ragcli", "ingest", "--json", str(corpus)],
        cwd=REPO,
        env={**os.environ, "RAGCLI_HOME": str(ragcli_home)},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    assert len(report["unchanged"]) == 3 and report["chunks"]["added"] == 0
    imported = [
        line.split("|")[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert [m for m in imported if m.split(".")[0] in HEAVY] == []
    (corpus / "alpha.txt").write_text("The Brindle bridge opened in 1933.\n")
    report = pipeline.ingest(load_settings(), [str(corpus)])  # a real change is still seen
    assert report.updated and report.chunks_added


def test_ingest_with_onnx_off_exports_nothing(prompted_model: Path, corpus: Path) -> None:
    settings = load_settings(embed_model=str(prompted_model), onnx="off")
    pipeline.ingest(settings, [str(corpus)])
    assert not (settings.model_cache_dir / "onnx").exists()


def _cli_search(env: dict[str, str], *args: str) -> tuple[dict, list[str]]:
    """``python -X importtime -m ragcli search --json ...``: the result and modules imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ragcli", "search", "--json", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = [
        line.split("|")[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "imported package" not in line
    ]
    return json.loads(done.stdout), imported


def test_cli_search_never_imports_torch_with_an_export(
    prompted_model: Path, corpus: Path, ragcli_home: Path
) -> None:
    pipeline.ingest(load_settings(embed_model=str(prompted_model)), [str(corpus)])
    env = {**os.environ, "RAGCLI_HOME": str(ragcli_home)}
    question = ["lighthouse keeper lamp", "-k", "5", "--mode", "dense"]
    fast, imported = _cli_search(env, *question)
    assert "onnxruntime" in imported
    assert [m for m in imported if m.split(".")[0] in HEAVY] == []
    slow, imported = _cli_search({**env, "RAGCLI_ONNX": "off"}, *question)
    assert "torch" in imported
    assert len(fast["hits"]) == len(slow["hits"]) == 5
    by_chunk = {h["chunk_id"]: h["score"] for h in slow["hits"]}
    for hit in fast["hits"]:
        if hit["chunk_id"] in by_chunk:
            assert hit["score"] == pytest.approx(by_chunk[hit["chunk_id"]], abs=1e-4)
    assert [h["score"] for h in fast["hits"]] == pytest.approx(
        [h["score"] for h in slow["hits"]], abs=1e-4
    )


@pytest.mark.integration
def test_bundled_embedder_same_vectors_and_hits_either_way(
    ragcli_home: Path, tmp_path: Path
) -> None:
    from .conftest import SAMPLE_CORPUS

    env = {**os.environ, "RAGCLI_HOME": str(ragcli_home)}
    done = subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(SAMPLE_CORPUS), "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    questions = [
        json.loads(line)["question"]
        for line in (SAMPLE_CORPUS / "questions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    settings = load_settings()
    fast = onnx_query_embedder(settings, "all-MiniLM-L6-v2")
    assert fast is not None and fast.backend == "onnx"  # exported by the ingest
    cosines = (fast.embed_queries(questions) * Embedder().embed_queries(questions)).sum(axis=1)
    assert cosines.min() >= 0.999, cosines.min()

    batch = tmp_path / "questions.txt"
    batch.write_text("\n".join(questions) + "\n")

    def hits(extra_env: dict[str, str]) -> tuple[list[list[int]], list[str]]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "ragcli", "search", "--batch", str(batch)],
            cwd=REPO,
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            check=True,
        )
        results = [json.loads(line) for line in done.stdout.splitlines()]
        imported = [
            line.split("|")[-1].strip()
            for line in done.stderr.splitlines()
            if line.startswith("import time:")
        ]
        return [[h["chunk_id"] for h in r["hits"]] for r in results], imported

    onnx_hits, imported = hits({})
    assert not [m for m in imported if m.split(".")[0] in HEAVY]
    torch_hits, imported = hits({"RAGCLI_ONNX": "off"})
    assert "torch" in imported
    assert len(onnx_hits) == len(questions)
    assert onnx_hits == torch_hits


def test_models_prepare_exports_the_embedder(prompted_model: Path) -> None:
    from ragcli.models import preparing

    settings = load_settings(embed_model=str(prompted_model))
    first = preparing.prepare_embedder(settings)
    assert first.steps[1] == "exported to ONNX for questions"
    assert find_export(settings.model_cache_dir, str(prompted_model.resolve())) is not None
    assert preparing.prepare_embedder(settings).steps[1] == "ONNX export already cached"
    assert len(preparing.prepare_embedder(load_settings(onnx="off")).steps) == 1
