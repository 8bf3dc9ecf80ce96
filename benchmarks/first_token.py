"""Question to first token with the model loaded: full passages against focused ones.

    python benchmarks/first_token.py [--questions N]

Ingests sample_corpus into a collection under RAGCLI_HOME (a temporary one unless set), then,
for ``--context full`` and ``--context focused`` in turn, starts a process that loads the
bundled generator once and asks the first N answerable sample questions (default: all 23) in order,
as ``ask --batch`` would: the generator's prompt cache carries over from one question to the
next within a setting, never between settings, and no question is asked twice. Prints, per
setting: the median of retrieval + time to first token (packing the prompt included), the
median prompt tokens, the median answer time, and how many answers hold the expected fact and
cite its source.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
COLLECTION = "ttft-sample"


def _questions(count: int) -> list[dict]:
    lines = (REPO / "sample_corpus/questions.jsonl").read_text().splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    return [q for q in questions if q["answerable"]][:count]


def _one_setting(context: str, count: int) -> None:
    """In the child: answer the questions with one setting, a JSON line per answer."""
    import dataclasses

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.models import generation
    from ragcli.pipeline.searching import Searcher

    settings = dataclasses.replace(load_settings(collection=COLLECTION), context=context)
    generator = generation.open_generator(
        settings.llm, settings.model_cache_dir, backend=settings.backend
    )
    generator.load()
    with Searcher(settings) as searcher:
        for q in _questions(count):
            answer = pipeline.ask(settings, q["question"], generator=generator, searcher=searcher)
            t = answer.timings
            right = q["answer"].lower() in answer.text.lower() and any(
                c.hit.source.endswith(q["source"]) for c in answer.citations
            )
            row = {
                "id": q["id"],
                "ttft": t.get("retrieve_s", 0.0) + t.get("first_token_s", 0.0),
                "prompt": t.get("prompt_tokens", 0.0),
                "total": t.get("retrieve_s", 0.0) + t.get("generate_s", 0.0),
                "right": right and not answer.abstained,
                "answer": answer.text,
            }
            print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=23)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _one_setting(args.child, args.questions)
        return
    if "RAGCLI_HOME" not in os.environ:
        os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix="ragcli-ttft-")
    from ragcli import pipeline
    from ragcli.config import load_settings

    pipeline.ingest(load_settings(collection=COLLECTION), [str(REPO / "sample_corpus")])
    runs = {}
    for context in ("full", "focused"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", context, "--questions", str(args.questions)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs[context] = [json.loads(line) for line in done.stdout.splitlines() if line]
    print(f"{args.questions} answerable sample questions, model loaded, one process per setting")
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
        for row in rows:
            if not row["right"]:
                print(f"          {row['id']} not right: {row['answer']!r}")


if __name__ == "__main__":
    main()
