"""Answer latency: ragcli's ask against a raw ``model.generate`` of the same prompt.

    python benchmarks/ask.py ["QUESTION"] [--max-tokens N]

Ingests sample_corpus into a temporary collection (unless RAGCLI_HOME already holds one), loads
the bundled generator, answers once through ``pipeline.ask`` and then runs a bare greedy
``generate`` on the identical prompt for the same number of new tokens, in the same process.
Prints model load time, retrieval ms, time to first token, decode tokens/s and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "question",
        nargs="?",
        default="What happens during the Tidelight Festival, and who organises it?",
    )
    parser.add_argument("--max-tokens", type=int, default=150)
    args = parser.parse_args()
    if "RAGCLI_HOME" not in os.environ:
        os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix="ragcli-bench-")

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.models.transformers_generator import Generator
    from ragcli.prompting import build_messages

    settings = load_settings(max_tokens=args.max_tokens)
    if not (settings.collection_dir / "manifest.json").exists():
        pipeline.ingest(settings, ["sample_corpus"])

    generator = Generator(settings.llm, settings.model_cache_dir, print)
    generator.load()
    answer = pipeline.ask(settings, args.question, generator=generator, abstain=False)
    t = answer.timings
    n = answer.tokens
    ragcli_decode = t["decode_tokens_per_s"]

    import torch

    # The very prompt ragcli sent: the packed passages, in order, under the same template.
    messages, _ = build_messages(args.question, answer.passages, generator.prompt_tokens, 10**9)
    inputs = generator.prompt_ids(messages)
    config = generator.generation_config(n)
    config.min_new_tokens = n  # same length as ragcli's answer
    with torch.inference_mode():
        started = time.perf_counter()
        generator.model.generate(**inputs, generation_config=generator.generation_config(1))
        prefill = time.perf_counter() - started
        started = time.perf_counter()
        out = generator.model.generate(**inputs, generation_config=config)
        total = time.perf_counter() - started
    raw_tokens = int(out.shape[1] - inputs["input_ids"].shape[1])
    raw_decode = (raw_tokens - 1) / (total - prefill)

    print(f"question: {args.question}")
    print(f"answer: {answer.text}")
    print(f"generator load: {generator.load_seconds:.2f} s")
    print(
        f"retrieval: {t['retrieve_s'] * 1000:.1f} ms (embedder load {t['embedder_load_s']:.2f} s)"
    )
    print(f"prompt tokens: {int(t['prompt_tokens'])}, answer tokens: {n}")
    print(
        f"ragcli: time to first token {t['first_token_s']:.2f} s, "
        f"generate {t['generate_s']:.2f} s, "
        f"decode {ragcli_decode:.2f} tok/s"
    )
    print(
        f"raw generate: prefill {prefill:.2f} s, {raw_tokens} tokens in {total:.2f} s, "
        f"decode {raw_decode:.2f} tok/s"
    )
    print(f"ratio ragcli decode / raw decode: {ragcli_decode / raw_decode:.3f}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
