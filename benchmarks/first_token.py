"""Question to first token with the model loaded: full passages against focused ones.

    python benchmarks/first_token.py [--questions N] [--rounds R]

Ingests sample_corpus into a temporary collection (unless RAGCLI_HOME already holds one), loads
the bundled generator once, then asks the first N answerable sample questions (default 5)
with ``--context full`` and ``--context focused`` in turn, R rounds (default 2), alternating
which goes first. Prints, per setting: the median of retrieval + time to first token, the
median prompt tokens, the median answer time, and whether each answer holds the expected fact
and cites its source. The generator's prompt-prefix cache is part of what is measured, as in
``ask --batch``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if "RAGCLI_HOME" not in os.environ:
        os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix="ragcli-ttft-")

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.models import generation
    from ragcli.pipeline.searching import Searcher

    settings = load_settings(collection="ttft-sample")
    pipeline.ingest(settings, [str(REPO / "sample_corpus")])
    lines = (REPO / "sample_corpus/questions.jsonl").read_text().splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    asked = [q for q in questions if q["answerable"]][: args.questions]
    generator = generation.open_generator(
        settings.llm, settings.model_cache_dir, backend=settings.backend
    )
    generator.load()
    runs: dict[str, list[dict]] = {"full": [], "focused": []}
    with Searcher(settings) as searcher:
        for round_ in range(args.rounds):
            order = ["full", "focused"] if round_ % 2 == 0 else ["focused", "full"]
            for context in order:
                chosen = dataclasses.replace(settings, context=context)
                for q in asked:
                    answer = pipeline.ask(
                        chosen, q["question"], generator=generator, searcher=searcher
                    )
                    t = answer.timings
                    right = q["answer"].lower() in answer.text.lower() and any(
                        c.hit.source.endswith(q["source"]) for c in answer.citations
                    )
                    runs[context].append(
                        {
                            "ttft": t.get("retrieve_s", 0.0) + t.get("first_token_s", 0.0),
                            "prompt": t.get("prompt_tokens", 0.0),
                            "total": t.get("retrieve_s", 0.0) + t.get("generate_s", 0.0),
                            "right": right and not answer.abstained,
                        }
                    )
    print(f"{len(asked)} questions x {args.rounds} rounds, model loaded, engine {generator.name}")
    print("context   question->first token (median)   prompt tokens   answer time   right")
    base = statistics.median(r["ttft"] for r in runs["full"])
    for context, rows in runs.items():
        ttft = statistics.median(r["ttft"] for r in rows)
        print(
            f"{context:8}  {ttft:6.2f} s ({ttft / base:.2f}x)"
            f"{statistics.median(r['prompt'] for r in rows):22.0f}"
            f"{statistics.median(r['total'] for r in rows):12.2f} s"
            f"   {sum(r['right'] for r in rows)}/{len(rows)}"
        )


if __name__ == "__main__":
    main()
