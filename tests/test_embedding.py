"""Query and document prompts, with a tiny sentence-transformers model built here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.errors import IncompatibleCollectionError, UsageError
from ragcli.models.embedding import (
    Embedder,
    bundled_embedder_path,
    collection_prompts,
    declared_prompt,
)

PROMPTS = {"query": "query: ", "document": "", "passage": "passage: "}


def tiny_sentence_transformer(
    folder: Path, prompts: dict[str, str] | None, dense: bool = False
) -> Path:
    """A 2-layer BERT with mean pooling (and a Dense + Normalize head when ``dense``), saved as
    a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )
    from transformers import AutoTokenizer, BertConfig, BertModel

    base = folder / "base"
    # The bundled model's own tokenizer (BertTokenizerFast(vocab_file=...) would ignore the vocab
    # in transformers 5 and map every word to [UNK]).
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_embedder_path()))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    modules = [Transformer(str(base)), Pooling(32)]
    if dense:
        modules += [Dense(32, 16), Normalize()]
    target = folder / "st"
    SentenceTransformer(modules=modules, device="cpu").save(str(target))
    settings_file = target / "config_sentence_transformers.json"
    saved = json.loads(settings_file.read_text())
    saved["prompts"] = prompts or {}
    settings_file.write_text(json.dumps(saved))
    return target


@pytest.fixture(scope="module")
def prompted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Declares e5-style prompts; "document" is empty, as sentence-transformers 6 saves it."""
    return tiny_sentence_transformer(tmp_path_factory.mktemp("prompted"), PROMPTS)


def _raw(model_dir: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    return model.encode(texts, prompt="", normalize_embeddings=True)


def test_declared_prompt_prefers_a_nonempty_document_name() -> None:
    assert declared_prompt(PROMPTS, "query") == "query: "
    assert declared_prompt(PROMPTS, "document") == "passage: "
    assert declared_prompt({"query": "", "document": ""}, "document") == ""
    assert declared_prompt({"corpus": "doc: "}, "document") == "doc: "


def test_queries_and_documents_use_the_models_own_prompts(prompted_model: Path) -> None:
    embedder = Embedder(str(prompted_model), precision="float32")
    assert (embedder.query_prompt, embedder.document_prompt) == ("query: ", "passage: ")
    raw = _raw(prompted_model, ["query: x", "passage: x", "x"])
    np.testing.assert_allclose(embedder.embed_queries(["x"])[0], raw[0], atol=1e-6)
    np.testing.assert_allclose(embedder.embed_documents(["x"])[0], raw[1], atol=1e-6)
    np.testing.assert_allclose(embedder.embed(["x"])[0], raw[2], atol=1e-6)
    assert not np.allclose(raw[0], raw[1])
    # "passage: " costs two tokens of the 126 the model reads whole
    assert embedder.max_tokens == 124


def test_given_prompts_override_the_models(prompted_model: Path) -> None:
    embedder = Embedder(
        str(prompted_model), query_prompt="", document_prompt="doc: ", precision="float32"
    )
    raw = _raw(prompted_model, ["x", "doc: x"])
    np.testing.assert_allclose(embedder.embed_queries(["x"])[0], raw[0], atol=1e-6)
    np.testing.assert_allclose(embedder.embed_documents(["x"])[0], raw[1], atol=1e-6)
    unnormalized = embedder.embed_documents(["x"], normalize=False)[0]
    assert abs(float(np.linalg.norm(unnormalized)) - 1.0) > 1e-3


def test_a_model_without_prompts_gets_none(tmp_path: Path) -> None:
    embedder = Embedder(str(tiny_sentence_transformer(tmp_path, None)), precision="float32")
    assert embedder.prompt_record() == {"query_prompt": "", "document_prompt": ""}
    np.testing.assert_allclose(embedder.embed_queries(["x"]), embedder.embed_documents(["x"]))


def test_collection_records_prompts_and_search_uses_them(
    prompted_model: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, list[str]]] = []
    for method in ("embed", "embed_queries", "embed_documents"):
        original = getattr(Embedder, method)

        def spy(self, texts, *args, _name=method, _original=original, **kwargs):
            calls.append((_name, list(texts)))
            return _original(self, texts, *args, **kwargs)

        monkeypatch.setattr(Embedder, method, spy)

    # The torch path (test_onnxembed.py checks the ONNX one against it).
    monkeypatch.setenv("RAGCLI_ONNX", "off")
    settings = load_settings(embed_model=str(prompted_model))
    pipeline.ingest(settings, [str(corpus / "alpha.txt")])
    manifest = json.loads((settings.collection_dir / "manifest.json").read_text())
    assert manifest["embedder"]["query_prompt"] == "query: "
    assert manifest["embedder"]["document_prompt"] == "passage: "
    assert manifest["embedder"]["max_tokens"] == 124
    assert {name for name, _ in calls} == {"embed_documents"}

    calls.clear()
    assert pipeline.search(load_settings(), "When did the bridge open?", top_k=1).hits
    assert calls == [("embed_queries", ["When did the bridge open?"])]

    with pytest.raises(IncompatibleCollectionError, match="query-prompt 'query: ', not 'q: '"):
        pipeline.search(load_settings(query_prompt="q: "), "bridge")
    with pytest.raises(IncompatibleCollectionError, match="document-prompt"):
        pipeline.ingest(load_settings(document_prompt=""), [str(corpus / "beta.md")])
    # the same prompts, given explicitly, are fine
    same = load_settings(query_prompt="query: ", document_prompt="passage: ")
    assert pipeline.search(same, "bridge", top_k=1).hits


def test_collections_without_recorded_prompts_keep_working() -> None:
    legacy = {"embedder": {"name": "x", "dimension": 3, "max_tokens": 10}}
    assert collection_prompts(legacy, load_settings()) == (None, None)
    given = load_settings(query_prompt="q: ")
    assert collection_prompts(legacy, given) == ("q: ", None)
    recorded = {"embedder": {"query_prompt": "", "document_prompt": "d: "}}
    assert collection_prompts(recorded, load_settings()) == ("", "d: ")


def test_prompts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGCLI_QUERY_PROMPT", "query: ")
    monkeypatch.setenv("RAGCLI_DOCUMENT_PROMPT", "passage: ")
    settings = load_settings()
    assert (settings.query_prompt, settings.document_prompt) == ("query: ", "passage: ")
    assert load_settings(query_prompt="").query_prompt == ""


def test_bfloat16_documents_stay_close_to_float32(prompted_model: Path) -> None:
    texts = ["the wing stalls at high angles of attack", "x", "boundary layer transition " * 20]
    exact = Embedder(str(prompted_model), precision="float32").embed_documents(texts)
    low = Embedder(str(prompted_model), precision="bfloat16")
    assert low.document_model is not low.model
    import torch

    assert next(low.document_model.parameters()).dtype == torch.bfloat16
    assert next(low.model.parameters()).dtype == torch.float32
    vectors = low.embed_documents(texts)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    cosines = (vectors * exact).sum(axis=1)
    assert cosines.min() > 0.999
    assert not np.array_equal(vectors, exact)  # it did run in bfloat16
    # queries keep float32
    np.testing.assert_array_equal(
        low.embed_queries(["x"]),
        Embedder(str(prompted_model), precision="float32").embed_queries(["x"]),
    )


def test_auto_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragcli.models import embedding

    monkeypatch.setattr(embedding, "cpu_has_native_bf16", lambda: True)
    assert embedding.document_precision("auto") == "bfloat16"
    monkeypatch.setattr(embedding, "cpu_has_native_bf16", lambda: False)
    assert embedding.document_precision("auto") == "float32"
    assert embedding.document_precision("bfloat16") == "bfloat16"
    with pytest.raises(UsageError):
        embedding.document_precision("fp8")
