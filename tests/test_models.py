"""Other-model code paths (local folders, hub ids) with tiny models built here from configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.errors import ModelError, RagcliError
from ragcli.models import embedding
from ragcli.models.embedding import Embedder, bundled_embedder_path
from ragcli.models.transformers_generator import Generator

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _save_tiny_bert(folder: Path, model_class: str, **extra: int) -> Path:
    """A 2-layer BERT with the bundled tokenizer, saved as a plain transformers folder."""
    import torch
    import transformers

    # The bundled tokenizer: BertTokenizerFast(vocab_file=...) ignores the vocabulary here.
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(bundled_embedder_path()))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **extra,
    )
    torch.manual_seed(0)
    getattr(transformers, model_class)(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT encoder; sentence-transformers adds mean pooling when loading it."""
    return _save_tiny_bert(tmp_path_factory.mktemp("tiny-embedder"), "BertModel")


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 with a small BPE tokenizer trained here and a chat template."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-generator")
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials)
    text = ["The lighthouse keeper was Ivo Sand.", "Answer using the passages [1]."] * 20
    bpe.train_from_iterator(text, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_local_embedder_folder(tiny_embedder: Path) -> None:
    embedder = Embedder(str(tiny_embedder))
    assert embedder.name == str(tiny_embedder.resolve())
    assert embedder.dimension == 32
    assert embedder.max_tokens == 126
    vectors = embedder.embed(["one text", "another text"])
    assert vectors.shape == (2, 32) and vectors.dtype.name == "float32"
    assert abs(float((vectors**2).sum(axis=1)[0]) - 1.0) < 1e-5
    assert embedder.count_tokens(["hello world"]) == [2]
    assert embedder.model.tokenizer.tokenize("lighthouse keeper") == ["lighthouse", "keeper"]


def test_ingest_and_search_with_a_local_embedder(tiny_embedder: Path, corpus: Path) -> None:
    settings = load_settings(embed_model=str(tiny_embedder))
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.added) == 3
    result = pipeline.search(load_settings(), "lighthouse keeper")  # the collection's embedder
    assert result.embedder == str(tiny_embedder.resolve()) and len(result.hits) > 0


def test_local_generator_folder_streams_within_limits(tiny_generator: Path, tmp_path: Path) -> None:
    generator = Generator(str(tiny_generator), tmp_path)
    generator.load()
    assert generator.name == str(tiny_generator.resolve())
    assert generator.context_window == 2048
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    pieces = list(generator.stream(messages, max_new_tokens=7))
    assert all(isinstance(p, str) for p in pieces)
    assert 1 <= generator.last_token_count <= 7
    assert generator.last_prompt_tokens == generator.prompt_tokens(messages)


def test_ask_with_a_local_generator(tiny_generator: Path, corpus: Path, monkeypatch) -> None:
    from .conftest import FakeEmbedder

    monkeypatch.setattr(embedding, "open_embedder", FakeEmbedder)
    settings = load_settings(llm=str(tiny_generator), max_tokens=5)
    pipeline.ingest(settings, [str(corpus)])
    answer = pipeline.ask(settings, "Who was the lighthouse keeper?")
    assert answer.generator == str(tiny_generator.resolve())
    assert answer.passages and answer.tokens <= 5
    with pytest.raises(RagcliError, match="no passage fits"):
        pipeline.ask(load_settings(llm=str(tiny_generator), max_tokens=2040), "Who?", abstain=False)


def test_missing_models_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot load embedder"):
        Embedder("nobody/no-such-embedder").embed(["x"])
    with pytest.raises(ModelError, match="cannot load generator"):
        Generator("nobody/no-such-llm", tmp_path).load()
    with pytest.raises(ModelError, match="GGUF file not found"):
        Generator(str(tmp_path / "absent.gguf"), tmp_path).load()


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT with one output: the shape of an MS MARCO cross-encoder."""
    return _save_tiny_bert(
        tmp_path_factory.mktemp("tiny-cross-encoder"), "BertForSequenceClassification", num_labels=1
    )


def test_rerank_orders_by_the_cross_encoder(
    tiny_cross_encoder: Path, corpus: Path, monkeypatch
) -> None:
    from ragcli.retrieval import Reranker

    from .conftest import FakeEmbedder

    monkeypatch.setattr(embedding, "open_embedder", FakeEmbedder)
    pipeline.ingest(load_settings(), [str(corpus)])
    question = "lighthouse lamp oil keeper"
    result = pipeline.search(
        load_settings(rerank=str(tiny_cross_encoder)), question, top_k=4, explain=True
    )
    assert len(result.hits) >= 2
    every = pipeline.search(load_settings(), question, top_k=50).hits  # the whole corpus
    expected = Reranker(str(tiny_cross_encoder)).scores(question, [h.text for h in every])
    best = sorted(expected, reverse=True)[: len(result.hits)]
    assert [h.score for h in result.hits] == pytest.approx(best, abs=1e-5)
    assert all(h.explain and "rerank_score" in h.explain for h in result.hits)
    assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))


def test_missing_reranker_is_a_model_error() -> None:
    from ragcli.retrieval import Reranker

    with pytest.raises(ModelError, match="cannot load reranker"):
        Reranker("nobody/no-such-reranker").scores("q", ["p"])
