"""`ragcli models` and `models prepare`: facts read from files, readiness, preparation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import ModelError
from ragcli.models import bundled_generator, catalog, embedding, gguf_conversion, preparing
from ragcli.models.bundled_generator import BUNDLED_GENERATOR
from ragcli.models.catalog import NEEDS_PREPARE, READY
from ragcli.models.engines import Engine
from ragcli.models.gguf_conversion import BUNDLED_CACHE_NAME, CACHE_MARKER
from ragcli.models.modelfiles import gguf_facts, safetensors_weights, sentence_transformer_facts

from .conftest import REPO, FakeEmbedder

runner = CliRunner()


def _save_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> int:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: np.zeros(shape, dtype=np.float16) for name, shape in shapes.items()}, path)
    return sum(int(np.prod(shape)) for shape in shapes.values())


def _generator_folder(folder: Path, marker: dict | None = None) -> Path:
    """A causal-LM folder with a config and tiny fp16 weights; a conversion if ``marker``."""
    folder.mkdir(parents=True)
    config = {
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 3,
        "max_position_embeddings": 4096,
    }
    (folder / "config.json").write_text(json.dumps(config))
    _save_safetensors(folder / "model.safetensors", {"embed": (10, 64), "norm": (64,)})
    if marker is not None:
        (folder / CACHE_MARKER).write_text(json.dumps(marker))
    return folder


@pytest.fixture(autouse=True)
def transformers_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests describe the transformers backend; the llama.cpp ones set their own."""
    monkeypatch.setenv("RAGCLI_BACKEND", "transformers")


def _tiny_gguf(path: Path) -> Path:
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "qwen2")
    writer.add_context_length(4096)
    writer.add_embedding_length(64)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_string("general.license", "apache-2.0")
    writer.add_token_list(["<a>", "<b>", "<c>"])  # an array of strings, as real vocabularies
    writer.add_tensor("token_embd.weight", np.zeros((10, 64), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _split(path: Path, pieces: int) -> list[Path]:
    data = path.read_bytes()
    size = -(-len(data) // pieces)
    parts = []
    for n in range(pieces):
        part = path.with_name(f"part{n + 1:02d}.bin")
        part.write_bytes(data[n * size : (n + 1) * size])
        parts.append(part)
    return parts


# -- facts from files --------------------------------------------------------------------------


def test_gguf_header_gives_size_and_shape_even_when_split(tmp_path: Path) -> None:
    gguf = _tiny_gguf(tmp_path / "tiny.gguf")
    facts = gguf_facts([gguf])
    assert facts.parameters == 10 * 64 + 64 * 64
    assert (facts.dimension, facts.max_tokens, facts.licence) == (64, 4096, "apache-2.0")
    assert facts.kv_bytes_per_token == 2 * 2 * 2 * 16 * 2  # k and v, layers, kv heads, head dim
    assert gguf_facts(_split(gguf, 3)) == facts
    other = tmp_path / "other.bin"
    other.write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(ValueError, match="not a GGUF"):
        gguf_facts([other])


def test_sentence_transformer_facts_follow_modules_and_card(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"hidden_size": 32, "max_position_embeddings": 512})
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32}))
    (folder / "2_Dense").mkdir()
    (folder / "2_Dense" / "config.json").write_text(json.dumps({"out_features": 16}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 100}))
    prompts = {"prompts": {"query": "query: ", "document": "", "passage": "passage: "}}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    (folder / "README.md").write_text("---\nlanguage: en\nlicense: mit\n---\n# A model\n")
    weights = _save_safetensors(folder / "model.safetensors", {"w": (30, 32)})
    weights += _save_safetensors(folder / "2_Dense" / "model.safetensors", {"d": (16, 32)})

    facts = sentence_transformer_facts(folder)
    assert (facts.dimension, facts.max_tokens, facts.licence) == (16, 100, "MIT")
    assert facts.parameters == weights and facts.weight_bytes == 2 * weights
    assert (facts.query_prompt, facts.document_prompt) == ("query: ", "passage: ")
    assert safetensors_weights([folder / "model.safetensors"]) == (30 * 32, 2 * 30 * 32)


# -- listing -----------------------------------------------------------------------------------


def test_bundled_models_before_preparation() -> None:
    embedder, generator = catalog.list_models(load_settings())
    assert (embedder.role, embedder.name, embedder.state) == (
        "embedder",
        "all-MiniLM-L6-v2",
        "ready",
    )
    assert embedder.facts.parameters == 22_713_216  # not counting the int64 position ids
    assert (embedder.facts.dimension, embedder.facts.max_tokens) == (384, 256)
    assert embedder.facts.licence == "Apache-2.0" and embedder.ready_offline
    assert embedder.memory_bytes == embedder.facts.parameters * 4 + 512 * 8  # as stored

    assert (generator.name, generator.state) == (BUNDLED_GENERATOR, "needs prepare")
    assert not generator.ready_offline
    assert (generator.facts.dimension, generator.facts.max_tokens) == (1536, 32768)
    assert generator.facts.parameters == 1_777_088_000  # read from the GGUF header in part 1
    assert generator.memory_bytes == generator.facts.parameters * 2  # loaded as bf16


def test_conversions_and_configured_models(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cache = tmp_path / "models"
    _generator_folder(cache / BUNDLED_CACHE_NAME, {"source": "bundled"})
    _generator_folder(cache / "old-abc-bf16", {"source": str(tmp_path / "deleted.gguf")})
    gguf = _tiny_gguf(tmp_path / "mine.gguf")
    settings = load_settings(models_dir=cache, llm=str(gguf), embed_model="org/not-cached")

    listed = {m.name: m for m in catalog.list_models(settings)}
    bundled = listed[BUNDLED_GENERATOR]
    assert bundled.state == "ready" and bundled.location == str(cache / BUNDLED_CACHE_NAME)
    assert bundled.facts.parameters == 10 * 64 + 64 and bundled.facts.max_tokens == 4096
    assert bundled.facts.kv_bytes_per_token == 2 * 3 * 2 * 16 * 2
    mine = listed[str(gguf)]
    assert (mine.origin, mine.state, mine.facts.max_tokens) == ("configured", "needs prepare", 4096)
    old = listed[str(tmp_path / "deleted.gguf")]
    assert (old.origin, old.state, old.note) == ("cached", "ready", "source file is gone")
    hub = listed["org/not-cached"]
    assert (hub.state, hub.location) == ("not downloaded", "hub: org/not-cached")

    # once converted, the configured GGUF is ready and loads from the cache
    converted = gguf_conversion.conversion_dir(str(gguf), cache)
    assert converted is not None
    _generator_folder(converted, {"source": str(gguf)})
    mine = {m.name: m for m in catalog.list_models(settings)}[str(gguf)]
    assert (mine.state, mine.location) == ("ready", str(converted))
    assert len(catalog.list_models(settings)) == 5  # not listed again as a cached conversion


def test_a_hub_model_in_the_local_cache_is_ready_offline(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--org--llm"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    _generator_folder(repo / "snapshots" / ("a" * 40))
    (info,) = [m for m in catalog.list_models(load_settings(llm="org/llm")) if m.name == "org/llm"]
    assert info.state == "ready" and info.location.endswith("a" * 40)
    assert info.facts.parameters == 10 * 64 + 64


# -- preparing ---------------------------------------------------------------------------------


@pytest.fixture
def fake_bundle(tmp_path: Path, monkeypatch) -> list[Path]:
    """The bundled parts replaced by a split tiny GGUF, and conversion by a quick stand-in."""
    (tmp_path / "bundle").mkdir()
    gguf = _tiny_gguf(tmp_path / "bundle" / "whole.gguf")
    parts = _split(gguf, 3)
    monkeypatch.setattr(bundled_generator, "bundled_part_paths", lambda: parts)
    monkeypatch.setattr(
        bundled_generator, "BUNDLED_SHA256", hashlib.sha256(gguf.read_bytes()).hexdigest()
    )
    conversions = []

    def convert(source: Path, destination: Path, marker: dict) -> Path:
        conversions.append(source)
        return _generator_folder(destination, marker)

    monkeypatch.setattr(gguf_conversion, "convert_gguf", convert)
    monkeypatch.setattr(embedding, "open_embedder", FakeEmbedder)
    return parts


def test_prepare_converts_once_then_verifies(fake_bundle: list[Path]) -> None:
    settings = load_settings()
    notes: list[str] = []
    first = preparing.prepare_models(settings, notes.append)
    assert [p.role for p in first] == ["generator", "embedder"]
    assert first[0].steps[0] == "assembled, verified and converted"
    assert "checked config and weights" in first[0].steps[1]
    assert first[0].location == str(settings.model_cache_dir / BUNDLED_CACHE_NAME)
    assert any("preparing the bundled generator" in n for n in notes)
    assert "64 dimensions" in first[1].steps[0]

    again = preparing.prepare_generator(settings)
    assert again.steps[:2] == ["verified the parts' sha256", "conversion already cached"]
    fake_bundle[1].write_bytes(b"tampered")
    with pytest.raises(ModelError, match="do not match their sha256"):
        preparing.prepare_generator(settings)


def test_prepare_refuses_a_conversion_without_weights(fake_bundle: list[Path]) -> None:
    settings = load_settings()
    preparing.prepare_generator(settings)
    (settings.model_cache_dir / BUNDLED_CACHE_NAME / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="holds no readable weights"):
        preparing.prepare_generator(settings)


# -- the commands ------------------------------------------------------------------------------


def test_models_command_json_and_tsv() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["models"]
    assert [(m["role"], m["origin"]) for m in models] == [
        ("embedder", "bundled"),
        ("generator", "bundled"),
    ]
    assert models[0]["dimension"] == 384 and models[0]["prompts"] == {"query": "", "document": ""}
    assert models[1]["context_window"] == 32768 and models[1]["ready_offline"] is False
    assert models[1]["kv_cache_bytes_per_token"] == 28 * 2 * 2 * 128 * 2
    plain = runner.invoke(app, ["models"])
    rows = [line.split("\t") for line in plain.stdout.splitlines()]
    assert [len(row) for row in rows] == [12, 12]
    assert rows[0][:5] == ["embedder", "all-MiniLM-L6-v2", "bundled", "ready", "yes"]
    assert rows[1][3:5] == ["needs prepare", "no"] and plain.stderr == ""


@pytest.mark.usefixtures("fake_bundle")
def test_models_prepare_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "prepare", "--json"])
    assert result.exit_code == 0, result.output
    prepared = json.loads(result.stdout)["models"]
    assert [p["role"] for p in prepared] == ["generator", "embedder"]
    assert "preparing the bundled generator" in result.stderr
    quiet = runner.invoke(app, ["models", "prepare", "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("generator\tQwen2.5-Coder-1.5B-Instruct-Q4_K_M\t")

    missing = runner.invoke(app, ["models", "prepare", "--llm", str(tmp_path / "none.gguf")])
    assert missing.exit_code == 4 and missing.stdout == ""
    assert "ragcli: error: GGUF file not found" in missing.stderr


# -- the llama.cpp backend -----------------------------------------------------------------------


WORKING = Engine(
    key="fake-working",
    module="tests.fake_engines",
    package="ragcli",
    factory="tests.fake_engines:WorkingEngine",
    hint="reinstall it",
)


@pytest.fixture
def on_llama_cpp(fake_bundle: list[Path], monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The fake bundle, run by a llama.cpp stand-in (checked in a child, as a real engine is)."""
    monkeypatch.setenv("RAGCLI_BACKEND", "auto")
    monkeypatch.chdir(REPO)  # the check's child imports tests.fake_engines from here
    return fake_bundle


def test_llama_cpp_runs_the_assembled_file_without_converting(on_llama_cpp: list[Path]) -> None:
    settings = load_settings()
    bundled = catalog.list_models(settings, (WORKING,))[1]
    assert (bundled.state, bundled.backend) == (NEEDS_PREPARE, "llama.cpp")
    assert bundled.memory_bytes == bundled.facts.disk_bytes  # quantized, as on disk
    assert "not checked on this CPU yet" in (bundled.engine or "")

    first = preparing.prepare_generator(settings, engines=(WORKING,))
    assembled = settings.model_cache_dir / bundled_generator.BUNDLED_GGUF_NAME
    assert first.location == str(assembled)
    assert first.steps[0] == "assembled and verified the GGUF (sha256)"
    assert first.steps[1].startswith("fake-working") and "checked on this CPU" in first.steps[1]
    assert first.steps[2].startswith("loaded with fake-working")
    assert not (settings.model_cache_dir / BUNDLED_CACHE_NAME).exists()  # nothing converted
    listed = catalog.list_models(settings, (WORKING,))[1].to_dict()
    assert (listed["state"], listed["location"], listed["backend"]) == (
        READY,
        str(assembled),
        "llama.cpp",
    )
    assert "fake-working" in listed["engine"] and "checked on this CPU" in listed["engine"]

    again = preparing.prepare_generator(settings, engines=(WORKING,))
    assert again.steps[0] == "verified the assembled GGUF's sha256"
    assembled.write_bytes(b"damaged")
    again = preparing.prepare_generator(settings, engines=(WORKING,))
    assert again.steps[0].startswith("the assembled GGUF did not match its sha256")
    assert hashlib.sha256(assembled.read_bytes()).hexdigest() == bundled_generator.BUNDLED_SHA256
