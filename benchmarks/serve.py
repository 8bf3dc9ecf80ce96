"""A resident server against a command per question, and the server under load.

    python benchmarks/serve.py [--cranfield DIR] [--questions N] [--clients 8] [--seconds 60]

Needs collections under RAGCLI_HOME (a temporary home unless set): ``serve-sample``
(sample_corpus) and ``serve-cranfield`` (the Cranfield documents), ingested first when missing.
Then, in one run, with the bundled models:

1. cold: ``ragcli ask --stream-json`` as a fresh process per question: time to the first token
   and to the end, from the process's start;
2. warm HTTP: the same questions to ``ragcli serve`` (``POST /ask`` streamed) once it has
   answered one other question: request to first token and to the last;
3. warm MCP: the same questions as the ``ask`` tool of ``ragcli mcp`` through the SDK's stdio
   client (a tool call is not streamed: only the time to the whole answer);
4. ``POST /search`` p50/p95 over Cranfield's 225 queries, one at a time, and a cold
   ``ragcli search`` for scale;
5. load: ``--clients`` threads for ``--seconds``, each asking a search (of a random Cranfield
   query) nine times in ten and an answer (of one of the questions) once in ten: requests by
   status, search latency under load, the server's resident memory over the run, and whether
   every answer is the text the cold ``ragcli ask`` gave for the same question (greedy).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
RAGCLI = [sys.executable, "-m", "ragcli"]
SAMPLE, CRANFIELD = "serve-sample", "serve-cranfield"


def _questions(count: int) -> list[str]:
    lines = (REPO / "sample_corpus/questions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [r["question"] for r in rows if r["answerable"]][:count]


def _cranfield_queries(folder: Path) -> list[str]:
    lines = (folder / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def _ensure(name: str, path: Path) -> None:
    listed = subprocess.run([*RAGCLI, "collections", "--json"], capture_output=True, text=True)
    if name in [c["name"] for c in json.loads(listed.stdout)["collections"]]:
        return
    print(f"ingesting {path} into {name} ...", file=sys.stderr)
    subprocess.run(
        [*RAGCLI, "ingest", str(path), "-c", name, "-q"], check=True, stdout=subprocess.DEVNULL
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# -- 1. cold ---------------------------------------------------------------------------------


def cold_ask(question: str) -> dict[str, Any]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [*RAGCLI, "ask", question, "-c", SAMPLE, "--stream-json", "-q"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = None
    done: dict[str, Any] = {}
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "token" and first is None:
            first = time.perf_counter() - started
        if event["event"] == "done":
            done = event
    process.wait()
    total = time.perf_counter() - started
    return {"first": first or total, "total": total, "answer": done.get("answer", "")}


# -- 2. warm HTTP ----------------------------------------------------------------------------


class Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [*RAGCLI, "serve", "-c", SAMPLE, "--port", "0"], stderr=subprocess.PIPE, text=True
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if match is None:
            raise SystemExit(f"the server did not start: {line}")
        self.url = f"http://127.0.0.1:{match.group(1)}"
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def warm_ask(client: httpx.Client, question: str, collection: str = SAMPLE) -> dict[str, Any]:
    started = time.perf_counter()
    first = None
    answer = ""
    body = {"question": question, "collection": collection, "stream": True}
    with client.stream("POST", "/ask", json=body) as response:
        if response.status_code != 200:
            return {"status": response.status_code}
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["event"] == "token" and first is None:
                first = time.perf_counter() - started
            if event["event"] == "done":
                answer = event["answer"]
    total = time.perf_counter() - started
    return {"status": 200, "first": first or total, "total": total, "answer": answer}


# -- 3. warm MCP -----------------------------------------------------------------------------


def mcp_asks(questions: list[str]) -> list[dict[str, Any]]:
    import anyio
    from mcp import StdioServerParameters
    from mcp.client.session import ClientSession
    from mcp.client.stdio import stdio_client

    results: list[dict[str, Any]] = []

    async def main() -> None:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "ragcli", "mcp", "-c", SAMPLE], env=dict(os.environ)
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for i, question in enumerate([questions[-1], *questions]):
                started = time.perf_counter()
                result = await session.call_tool("ask", {"question": question})
                total = time.perf_counter() - started
                if i:  # the first one loads the generator
                    data = result.structured_content or {}
                    answer = data.get("answer", "") if isinstance(data, dict) else ""
                    results.append({"total": total, "answer": answer})

    anyio.run(main)
    return results


# -- 5. load ---------------------------------------------------------------------------------


def load_test(
    server: Server,
    questions: list[str],
    queries: list[str],
    clients: int,
    seconds: float,
    expected: dict[str, str],
) -> None:
    statuses: dict[str, dict[int, int]] = {"search": {}, "ask": {}}
    search_ms: list[float] = []
    mismatched: list[str] = []
    answered = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client_loop(seed: int) -> None:
        nonlocal answered
        rng = random.Random(seed)
        with httpx.Client(base_url=server.url, timeout=300) as client:
            while time.monotonic() < stop_at:
                if rng.random() < 0.1:
                    question = rng.choice(questions)
                    result = warm_ask(client, question)
                    with lock:
                        statuses["ask"][result["status"]] = (
                            statuses["ask"].get(result["status"], 0) + 1
                        )
                        if result["status"] == 200:
                            answered += 1
                            if result["answer"] != expected[question]:
                                mismatched.append(question)
                    if result["status"] == 503:
                        time.sleep(1)
                else:
                    started = time.perf_counter()
                    response = client.post(
                        "/search", json={"question": rng.choice(queries), "collection": CRANFIELD}
                    )
                    elapsed = (time.perf_counter() - started) * 1000
                    with lock:
                        code = response.status_code
                        statuses["search"][code] = statuses["search"].get(code, 0) + 1
                        if code == 200:
                            search_ms.append(elapsed)

    rss = [server.rss_mib()]
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        rss.append(server.rss_mib())
    print(f"\n## load: {clients} clients, {seconds:.0f} s, 1 answer in 10 requests")
    print(f"searches by status: {statuses['search']}; answers by status: {statuses['ask']}")
    unexpected = sum(
        n for kind in statuses.values() for c, n in kind.items() if c not in (200, 503)
    )
    print(f"errors other than 503: {unexpected}")
    if search_ms:
        print(
            f"search under load: p50 {_percentile(search_ms, 0.5):.1f} ms, "
            f"p95 {_percentile(search_ms, 0.95):.1f} ms, {len(search_ms) / seconds:.1f}/s"
        )
    print(
        f"server RSS: {rss[0]:.0f} MiB at the start, {rss[-1]:.0f} at the end, "
        f"{max(rss):.0f} at most (sampled each second)"
    )
    print(f"answers identical to the CLI's: {answered - len(mismatched)} of {answered}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cranfield", type=Path, default=REPO.parent / "shared/data/cranfield")
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if "RAGCLI_HOME" not in os.environ:
        os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix="ragcli-bench-serve-")
    _ensure(SAMPLE, REPO / "sample_corpus")
    _ensure(CRANFIELD, args.cranfield / "docs")
    questions = _questions(args.questions)
    queries = _cranfield_queries(args.cranfield)

    cold = [cold_ask(q) for q in questions]
    server = Server()
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            warm_ask(client, _questions(args.questions + 1)[-1])  # loads the generator
            warm = [warm_ask(client, q) for q in questions]
            mcp = mcp_asks(questions)
            print(f"## answers: {len(questions)} sample questions, medians")
            print("| run | first token | last token | same answer as cold |")
            print("|---|---|---|---|")
            rows = [
                ("cold `ragcli ask` (fresh process)", cold),
                ("warm `POST /ask` (streamed)", warm),
                ("warm MCP `ask` (whole answer)", mcp),
            ]
            for label, runs in rows:
                first = (
                    f"{statistics.median(r['first'] for r in runs):.2f} s"
                    if "first" in runs[0]
                    else "-"
                )
                same = sum(r["answer"] == c["answer"] for r, c in zip(runs, cold, strict=True))
                total = statistics.median(r["total"] for r in runs)
                print(f"| {label} | {first} | {total:.2f} s | {same}/{len(runs)} |")
            for label, runs in rows[1:]:
                ratio = statistics.median(r["total"] for r in runs) / statistics.median(
                    c["total"] for c in cold
                )
                print(f"{label}: last token at {ratio:.2f}x of cold")

            client.post("/search", json={"question": queries[0], "collection": CRANFIELD})
            times = []
            for query in queries:
                started = time.perf_counter()
                client.post("/search", json={"question": query, "collection": CRANFIELD})
                times.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            subprocess.run(
                [*RAGCLI, "search", queries[0], "-c", CRANFIELD, "--json"],
                capture_output=True,
                check=True,
            )
            cold_search = time.perf_counter() - started
            print(
                f"\n## search, Cranfield ({len(queries)} queries, one at a time): warm "
                f"POST /search p50 {_percentile(times, 0.5):.1f} ms, p95 "
                f"{_percentile(times, 0.95):.1f} ms; cold `ragcli search` {cold_search:.2f} s"
            )
        expected = {q: c["answer"] for q, c in zip(questions, cold, strict=True)}
        load_test(server, questions, queries, args.clients, args.seconds, expected)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
