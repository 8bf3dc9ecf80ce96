"""Load time, throughput and memory of the bundled models (README "Choosing models").

    python benchmarks/models.py [embedder|generator ...] [--texts N] [--new-tokens N] [--repeat N]

Each model runs in a fresh subprocess so that its peak RSS is its own; importing the libraries
is timed apart from loading the model. The embedder encodes N texts of about 16, 64 and 200
tokens as documents and times one query; the generator loads from the model cache, then times
the prefill of a ~250- and a ~1000-token prompt and greedy decoding. Point RAGCLI_MODELS_DIR at a
prepared cache (`ragcli models prepare`) so nothing is converted here. Each timing is the best
of --repeat runs, which keeps other work on a shared machine out of the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
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


def _best(run: Callable[[], object], repeat: int) -> float:
    """The shortest of ``repeat`` timings: the least disturbed by other work on the machine."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def bench_embedder(n_texts: int, repeat: int) -> dict[str, float]:
    from ragcli.models.runtime import prepare_model_runtime

    prepare_model_runtime()
    started = time.perf_counter()
    import sentence_transformers  # noqa: F401 - import cost is reported apart from loading

    from ragcli.models.embedding import Embedder

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
        elapsed = _best(lambda texts=texts: embedder.embed_documents(texts), repeat)
        result[f"texts_per_s@{target}"] = n_texts / elapsed
        result[f"mean_tokens@{target}"] = tokens
    question = ["Who founded Gullstone Observatory?"]
    result["query_ms"] = _best(lambda: embedder.embed_queries(question), 10 * repeat) * 1000
    result["peak_rss_mib"] = _peak_mib()
    return result


def bench_generator(new_tokens: int, repeat: int) -> dict[str, float]:
    from ragcli.models.runtime import prepare_model_runtime

    prepare_model_runtime()
    started = time.perf_counter()
    import torch
    import transformers  # noqa: F401 - import cost is reported apart from loading

    from ragcli.config import load_settings
    from ragcli.models.transformers_generator import Generator

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
        one = generator.generation_config(1)
        with torch.inference_mode():
            prefill = _best(
                lambda i=inputs, c=one: generator.model.generate(**i, generation_config=c), repeat
            )
        result[f"prefill_s@{size}"] = prefill
        result[f"prompt_tokens@{size}"] = prompt_tokens
    # Decoding after the short prompt: tokens/s of the answer once the first token is out.
    short = generator.prompt_ids([{"role": "user", "content": "Tell me about lighthouses."}])
    first = generator.generation_config(1)
    config = generator.generation_config(new_tokens)
    config.min_new_tokens = new_tokens
    with torch.inference_mode():
        prefill = _best(lambda: generator.model.generate(**short, generation_config=first), repeat)
        total = _best(lambda: generator.model.generate(**short, generation_config=config), repeat)
    result["decode_tokens_per_s"] = (new_tokens - 1) / (total - prefill)
    result["peak_rss_mib"] = _peak_mib()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", help="embedder, generator (default: both)")
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--child", choices=["embedder", "generator"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "embedder":
        print(json.dumps(bench_embedder(args.texts, args.repeat)))
        return
    if args.child == "generator":
        print(json.dumps(bench_generator(args.new_tokens, args.repeat)))
        return
    for model in args.models or ["embedder", "generator"]:
        if model not in ("embedder", "generator"):
            parser.error(f"unknown model {model!r}: embedder or generator")
        command = [sys.executable, __file__, "--child", model]
        command += ["--texts", str(args.texts), "--new-tokens", str(args.new_tokens)]
        command += ["--repeat", str(args.repeat)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(model)
        for key, value in figures.items():
            print(f"  {key:24} {value:10.2f}")


if __name__ == "__main__":
    main()
