"""Batch asking: N questions in one ``ragcli ask --batch`` against N separate ``ragcli ask`` runs.

    python benchmarks/batch.py [N]      (default 10; sample_corpus questions, --max-tokens 48)

Both paths run as fresh processes through the real CLI, so the separate runs pay the imports
and the model loads every time, as a shell loop would. Prints both wall times and the ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    env = {**os.environ}
    env.setdefault("RAGCLI_HOME", tempfile.mkdtemp(prefix="ragcli-bench-"))
    ragcli = [sys.executable, "-m", "ragcli"]
    subprocess.run([*ragcli, "ingest", "sample_corpus", "-q"], cwd=REPO, env=env, check=True)
    lines = (REPO / "sample_corpus" / "questions.jsonl").read_text().splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()][:n]
    flags = ["--max-tokens", "48", "--json", "-q"]

    started = time.perf_counter()
    for question in questions:
        subprocess.run([*ragcli, "ask", question, *flags], cwd=REPO, env=env, capture_output=True)
    separate = time.perf_counter() - started

    started = time.perf_counter()
    done = subprocess.run(
        [*ragcli, "ask", "--batch", "-", *flags],
        input="\n".join(questions) + "\n",
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    batch = time.perf_counter() - started
    answered = len(done.stdout.splitlines())

    print(f"{n} questions, --max-tokens 48")
    print(f"separate ragcli ask runs: {separate:.1f} s ({separate / n:.1f} s per question)")
    print(
        f"one ragcli ask --batch: {batch:.1f} s "
        f"({batch / n:.1f} s per question, {answered} answers)"
    )
    print(f"ratio separate / batch: {separate / batch:.2f}")


if __name__ == "__main__":
    main()
