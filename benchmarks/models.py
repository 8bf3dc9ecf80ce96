"""Load time, throughput and memory of the bundled models (README "Choosing models").

    python benchmarks/models.py [embedder|generator ...] [--texts N] [--new-tokens N]

Each model runs in a fresh subprocess so that its peak RSS is its own; torch is imported
before the clock starts. The embedder encodes N texts of about 16, 64 and 200 tokens as
documents and times one query; the generator loads from the model cache, then times the
prefill of a ~250- and a ~1000-token prompt and greedy decoding. Point RAGCLI_MODELS_DIR at a
prepared cache (`ragcli models prepare`) so nothing is converted here.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_mib() -> float:
    """Current resident memory, from /proc (Linux); weights are mapped in lazily, so the peak
    after use is the figure that counts."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _words() -> list[str]:
    text = " ".join(
        p.read_text(encoding="utf-8")
        for p in sorted((ROOT / "sample_corpus").glob("*"))
        if p.suffix in {".md", ".txt"}
    )
    return text.split()


def bench_embedder(n_texts: int) -> dict[str, float]:
    from ragcli.runtime import prepare_model_runtime

    prepare_model_runtime()
    started = time.perf_counter()
    import sentence_transformers  # noqa: F401 - import cost is reported apart from loading

    from ragcli.embedding import Embedder

    result: dict[str, float] = {"import_s": time.perf_counter() - started}
    result["rss_after_import_mib"] = _rss_mib()
    started = time.perf_counter()
    embedder = Embedder()
    embedder.model  # noqa: B018
    result["load_s"] = time.perf_counter() - started
    embedder.embed_documents(["warm-up"] * 8)
    words = _words()
    pool = words * 2  # texts may wrap around the end of the corpus
    for target in (16, 64, 200):
        size = int(target * 0.75)  # about 4 tokens for every 3 words in this corpus
        texts = [" ".join(pool[i * 7 % len(words) :][:size]) for i in range(n_texts)]
        tokens = sum(embedder.count_tokens(texts)) / n_texts
        started = time.perf_counter()
        embedder.embed_documents(texts)
        elapsed = time.perf_counter() - started
        result[f"texts_per_s@{target}"] = n_texts / elapsed
        result[f"mean_tokens@{target}"] = tokens
    started = time.perf_counter()
    for _ in range(10):
        embedder.embed_queries(["Who founded Gullstone Observatory?"])
    result["query_ms"] = (time.perf_counter() - started) * 100
    result["peak_rss_mib"] = _peak_mib()
    return result


def bench_generator(new_tokens: int) -> dict[str, float]:
    from ragcli.runtime import prepare_model_runtime

    prepare_model_runtime()
    started = time.perf_counter()
    import torch
    import transformers  # noqa: F401 - import cost is reported apart from loading

    from ragcli.config import load_settings
    from ragcli.generation import Generator

    result: dict[str, float] = {"import_s": time.perf_counter() - started}
    result["rss_after_import_mib"] = _rss_mib()
    settings = load_settings()
    generator = Generator(settings.llm, settings.model_cache_dir, print)
    generator.load()
    result["load_s"] = generator.load_seconds
    words = _words()
    for size in (250, 1000):
        text = " ".join(words[: int(size * 0.75)])
        messages = [{"role": "user", "content": f"{text}\n\nSummarise this in one sentence."}]
        inputs = generator.prompt_ids(messages)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        with torch.inference_mode():
            started = time.perf_counter()
            generator.model.generate(**inputs, generation_config=generator.generation_config(1))
            prefill = time.perf_counter() - started
        result[f"prefill_s@{size}"] = prefill
        result[f"prompt_tokens@{size}"] = prompt_tokens
    config = generator.generation_config(new_tokens)
    config.min_new_tokens = new_tokens
    with torch.inference_mode():
        started = time.perf_counter()
        generator.model.generate(**inputs, generation_config=config)
        total = time.perf_counter() - started
    result["decode_tokens_per_s"] = (new_tokens - 1) / (total - result["prefill_s@1000"])
    result["peak_rss_mib"] = _peak_mib()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", help="embedder, generator (default: both)")
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--child", choices=["embedder", "generator"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "embedder":
        print(json.dumps(bench_embedder(args.texts)))
        return
    if args.child == "generator":
        print(json.dumps(bench_generator(args.new_tokens)))
        return
    for model in args.models or ["embedder", "generator"]:
        if model not in ("embedder", "generator"):
            parser.error(f"unknown model {model!r}: embedder or generator")
        command = [sys.executable, __file__, "--child", model]
        command += ["--texts", str(args.texts), "--new-tokens", str(args.new_tokens)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(model)
        for key, value in figures.items():
            print(f"  {key:24} {value:10.2f}")


if __name__ == "__main__":
    main()
