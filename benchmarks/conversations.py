"""Follow-up questions: retrieval with the generator's rewrite against the follow-up as asked.

    python benchmarks/conversations.py [--k 4] [--no-answers] [--save FILE]

Ingests sample_corpus into a temporary RAGCLI_HOME (or uses RAGCLI_HOME when it is set and
already holds the collection) and plays every conversation of
``sample_corpus/conversations.jsonl`` through one ``Conversation``, the bundled models loaded
once: each turn is answered as ``ragcli chat`` answers it, so later rewrites read real answers.
For every follow-up it reports whether the turn's gold source (file, and page for the PDF) is
among the k passages retrieved for the rewrite and for the follow-up as asked, and how long
the rewrite took. Unless ``--no-answers``, each follow-up is also answered a second time with
the earlier turns in the prompt, and both answers are checked for the gold answer (what decides
``conversing.ANSWER_SEES_EARLIER``). Prints one line per follow-up and the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _gold_in(hits: list, turn: dict) -> bool:
    """Whether a hit is from the turn's gold source (and page, when the turn names one)."""
    return any(_is_gold(hit, turn) for hit in hits)


def _answer_in(hits: list, turn: dict) -> bool:
    """Whether a hit from the gold source holds the gold answer (the passage that answers)."""
    from ragcli.answer_metrics import contains_answer

    return any(_is_gold(hit, turn) and contains_answer(hit.text, [turn["answer"]]) for hit in hits)


def _is_gold(hit, turn: dict) -> bool:  # type: ignore[no-untyped-def]
    source = hit.source.replace("\\", "/")
    named = source == turn["source"] or source.endswith("/" + turn["source"])
    return named and (turn.get("page") is None or hit.page == turn["page"])


def _mark(row: dict, label: str) -> str:
    """``hit+`` (the answer's passage), ``hit`` (its source) or ``miss``."""
    if row[f"{label}_passage"]:
        return "hit+"
    return "hit " if row[f"{label}_hit"] else "miss"


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=4, help="passages retrieved (default 4)")
    parser.add_argument(
        "--no-answers", action="store_true", help="skip the second answer with earlier turns"
    )
    parser.add_argument("--save", type=Path, help="write every follow-up's figures (JSON Lines)")
    args = parser.parse_args()
    os.environ.setdefault("RAGCLI_HOME", tempfile.mkdtemp(prefix="ragcli-bench-"))
    os.chdir(REPO)  # sources as `ragcli ingest sample_corpus` records them

    from ragcli import pipeline
    from ragcli.answer_metrics import contains_answer
    from ragcli.config import load_settings
    from ragcli.pipeline.answering import ask
    from ragcli.pipeline.conversing import Conversation, Session, rewrite_query

    settings = load_settings(top_k=args.k)
    if not (settings.collection_dir / "manifest.json").exists():
        pipeline.ingest(settings, ["sample_corpus"])
    conversations = [
        json.loads(line)
        for line in (REPO / "sample_corpus" / "conversations.jsonl").read_text().splitlines()
        if line.strip()
    ]
    started = time.perf_counter()
    rows: list[dict] = []
    session = Session(settings.collection)
    with Conversation(settings, session) as conversation:
        conversation.load()
        searcher, generator = conversation.searcher, conversation.generator
        load_s = time.perf_counter() - started
        for talk in conversations:
            session.forget()
            first = talk["turns"][0]
            conversation.ask(first["question"], top_k=args.k)
            for turn in talk["turns"][1:]:
                question = turn["question"]
                earlier = [(t.question, t.answer) for t in session.context]
                t0 = time.perf_counter()
                rewrite = rewrite_query(generator, earlier, question)
                rewrite_s = time.perf_counter() - t0
                query = rewrite or question
                row = {
                    "conversation": talk["id"],
                    "question": question,
                    "rewrite": rewrite,
                    "rewrite_s": round(rewrite_s, 3),
                    "gold": turn["source"] + (f" p.{turn['page']}" if turn.get("page") else ""),
                }
                for label, text in (("raw", question), ("rewrite", query)):
                    hits = searcher.search(text, args.k).hits
                    row[f"{label}_hit"] = _gold_in(hits, turn)
                    row[f"{label}_passage"] = _answer_in(hits, turn)
                    row[f"{label}_first"] = _answer_in(hits[:1], turn)
                answer = conversation.ask(question, query=query, top_k=args.k)
                row["answer"] = answer.text
                row["answer_right"] = contains_answer(answer.text, [turn["answer"]])
                row["abstained"] = answer.abstain_reason
                if not args.no_answers:
                    seen = ask(
                        settings, question, args.k, generator=generator, searcher=searcher,
                        query=query, earlier=earlier,
                    )  # fmt: skip
                    row["answer_with_earlier"] = seen.text
                    row["answer_with_earlier_right"] = contains_answer(seen.text, [turn["answer"]])
                    row["abstained_with_earlier"] = seen.abstain_reason
                rows.append(row)
                print(
                    f"{row['conversation']:<12} raw {_mark(row, 'raw')}  "
                    f"rewrite {_mark(row, 'rewrite')}  {rewrite_s:5.2f} s  "
                    f"{question!r} -> {rewrite!r}",
                    flush=True,
                )
    total_s = time.perf_counter() - started
    n = len(rows)
    times = [r["rewrite_s"] for r in rows]
    print()
    print(f"CPU: {_cpu()} ({os.cpu_count()} cores); k = {args.k}; {n} follow-ups in "
          f"{len(conversations)} conversations")  # fmt: skip
    for key, what in (
        ("hit", f"gold source in top-{args.k}"),
        ("passage", f"passage with the gold answer in top-{args.k}"),
        ("first", "passage with the gold answer first"),
    ):
        for label, how in (("raw", "follow-up as asked"), ("rewrite", "rewritten")):
            found = sum(r[f"{label}_{key}"] for r in rows)
            print(f"{what}, {how}: {found}/{n} ({found / n:.0%})")
    unusable = sum(r["rewrite"] is None for r in rows)
    print(f"rewrites unusable (searched for the question as asked): {unusable}")
    print(f"rewrite latency: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s (model loaded)")  # fmt: skip
    print(f"gold answer in the answer (question only in the prompt): "
          f"{sum(r['answer_right'] for r in rows)}/{n}, "
          f"withheld {sum(r['abstained'] is not None for r in rows)}")  # fmt: skip
    if not args.no_answers:
        print(f"gold answer in the answer (earlier turns in the prompt too): "
              f"{sum(r['answer_with_earlier_right'] for r in rows)}/{n}, "
              f"withheld {sum(r['abstained_with_earlier'] is not None for r in rows)}")  # fmt: skip
    print(f"model load {load_s:.1f} s; whole run {total_s:.0f} s")
    if args.save:
        args.save.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


if __name__ == "__main__":
    main()
