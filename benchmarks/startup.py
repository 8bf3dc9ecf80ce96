"""Start-up: ``ragcli --help`` and a cold ``ragcli search``, ONNX query path against torch.

    python benchmarks/startup.py [DATASET_DIR] [--runs N]

Ingests the BEIR corpus (default: Cranfield) once with ``ragcli ingest`` into the collection
``startup`` (``-c NAME``: another) of RAGCLI_HOME (a temporary folder unless set; set it to
reuse the collection between runs), which also exports the embedder to ONNX. Then, in the
same run and alternating:

- ``ragcli --help`` and ``python -c pass`` (the interpreter alone), wall time;
- a cold ``ragcli search`` (a fresh process each time, files in the OS cache) of a different
  Cranfield query each run, end to end, with the ONNX query path and with ``RAGCLI_ONNX=off``;
- in a fresh process per path: what it takes before the first question can be embedded
  (imports, model or session load) and the median time to embed one question, over 100
  questions, and the least cosine between the two paths' vectors of those questions.

Prints medians (and minima) as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTION = "startup"


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _wall(command: list[str], **env: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=_env(**env), capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def _worker(collection: str, backend: str, questions_file: str, vectors_file: str) -> None:
    """In a fresh process: load time, then one question at a time; prints JSON."""
    started = time.perf_counter()
    import numpy as np

    from ragcli.config import load_settings
    from ragcli.models.embedding import Embedder
    from ragcli.models.onnxembed import onnx_query_embedder
    from ragcli.store import read_manifest

    settings = load_settings(collection=collection)
    name = read_manifest(settings.collection_dir)["embedder"]["name"]
    embedder = onnx_query_embedder(settings, name) if backend == "onnx" else Embedder(name)
    if embedder is None:
        raise SystemExit("no ONNX export to measure")
    embedder.load()
    questions = json.loads(Path(questions_file).read_text())
    embedder.embed_queries(questions[:1])  # the first run allocates
    load_s = time.perf_counter() - started
    timings, vectors = [], []
    for question in questions:
        began = time.perf_counter()
        vectors.append(embedder.embed_queries([question])[0])
        timings.append(time.perf_counter() - began)
    np.save(vectors_file, np.stack(vectors))
    heavy = sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules)
    print(
        json.dumps(
            {
                "backend": embedder.backend,
                "ready_s": load_s,
                "embed_ms": statistics.median(timings) * 1000,
                "heavy_modules": heavy,
            }
        )
    )


def _ensure_collection(dataset: Path, collection: str) -> None:
    from ragcli.config import load_settings
    from ragcli.models.embedding import Embedder
    from ragcli.models.onnxexport import export_embedder
    from ragcli.store import read_manifest

    settings = load_settings(collection=collection)
    if not (settings.collection_dir / "manifest.json").exists():
        print(f"ingesting {dataset / 'corpus.jsonl'} (once) ...", file=sys.stderr)
        seconds, _ = _wall(
            [sys.executable, "-m", "ragcli", "ingest", "-q", "-c", collection]
            + [str(dataset / "corpus.jsonl")]
        )
        print(f"ingested in {seconds:.1f} s", file=sys.stderr)
    # A collection ingested before exports existed gets its export here.
    name = read_manifest(settings.collection_dir)["embedder"]["name"]
    export_embedder(Embedder(name), settings.model_cache_dir)


def _row(label: str, values: list[float], unit: str = "s") -> str:
    scale = 1000 if unit == "ms" else 1
    median, least = statistics.median(values) * scale, min(values) * scale
    digits = 0 if unit == "ms" else 2
    return f"| {label} | {median:.{digits}f} {unit} | {least:.{digits}f} {unit} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", nargs="?", default=str(REPO.parent / "shared/data/cranfield"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("-c", "--collection", default=COLLECTION, help="the collection to search")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    collection = args.collection
    if args.worker:
        _worker(collection, *args.worker)
        return
    os.environ.setdefault("RAGCLI_HOME", tempfile.mkdtemp(prefix="ragcli-bench-"))
    sys.path.insert(0, str(REPO))
    dataset = Path(args.dataset)
    _ensure_collection(dataset, collection)
    queries = [
        json.loads(line)["text"]
        for line in (dataset / "queries.jsonl").read_text().splitlines()
        if line.strip()
    ]

    # An installed package is byte-compiled (pip does it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile ragcli's modules in every process instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "ragcli")], check=True)
    python = [sys.executable]
    ragcli = [*python, "-m", "ragcli"]
    measured: dict[str, list[float]] = {"pass": [], "help": [], "onnx": [], "torch": []}
    same_hits = 0
    for run in range(args.runs):
        question = queries[run % len(queries)]
        measured["pass"].append(_wall([*python, "-c", "pass"])[0])
        measured["help"].append(_wall([*ragcli, "--help"])[0])
        search = [*ragcli, "search", "-c", collection, "--json", question]
        seconds, fast = _wall(search)
        measured["onnx"].append(seconds)
        seconds, slow = _wall(search, RAGCLI_ONNX="off")
        measured["torch"].append(seconds)
        ids = [[h["chunk_id"] for h in json.loads(out)["hits"]] for out in (fast, slow)]
        same_hits += ids[0] == ids[1]

    import numpy as np

    workdir = Path(tempfile.mkdtemp(prefix="ragcli-startup-"))
    questions_file = workdir / "questions.json"
    questions_file.write_text(json.dumps(queries[:100]))
    workers = {}
    for backend in ("onnx", "torch"):
        vectors_file = workdir / f"{backend}.npy"
        _, out = _wall(
            [*python, __file__, "-c", collection, "--worker", backend]
            + [str(questions_file), str(vectors_file)]
        )
        workers[backend] = json.loads(out)
        workers[backend]["vectors"] = np.load(vectors_file)
    cosines = (workers["onnx"]["vectors"] * workers["torch"]["vectors"]).sum(axis=1)

    print(f"dataset: {dataset}, collection {collection!r}, {args.runs} runs, cpus {os.cpu_count()}")
    print("| measure | median | min |")
    print("|---|---|---|")
    print(_row("`python -c pass` (interpreter start)", measured["pass"]))
    print(_row("`ragcli --help`", measured["help"]))
    print(_row("cold `ragcli search`, ONNX query path", measured["onnx"]))
    print(_row("cold `ragcli search`, torch (`RAGCLI_ONNX=off`)", measured["torch"]))
    for backend in ("onnx", "torch"):
        w = workers[backend]
        print(f"| {backend}: ready to embed (imports + load) | {w['ready_s']:.2f} s | |")
        print(f"| {backend}: one question embedded | {w['embed_ms']:.1f} ms | |")
    print(f"| least cosine, ONNX vs torch, {len(cosines)} questions | {cosines.min():.7f} | |")
    print(f"| same top-4 chunks from both searches | {same_hits} of {args.runs} | |")
    print(f"modules on the ONNX path: {workers['onnx']['heavy_modules'] or 'no torch'}")


if __name__ == "__main__":
    main()
