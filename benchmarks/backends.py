"""Answer latency, decode speed and memory: ragcli on each backend against the raw libraries.

    python benchmarks/backends.py ["QUESTION"] [--max-tokens N] [--skip-transformers]

Ingests sample_corpus into a temporary collection, builds the prompt ragcli sends for the
question, then runs each of these in a fresh process (timed with /usr/bin/time for wall time
and peak RSS), one after the other in the same run:

- ``ragcli ask`` end to end on the llama.cpp backend (the engine it checked and chose on this
  CPU) and on the transformers backend (import, retrieval, model load, prefill, decode);
- llama.cpp called directly, same GGUF, same messages, greedy: xllamacpp's server
  (``handle_chat_completions``) and, when installed, llama-cpp-python
  (``create_chat_completion``); the faster of them is the anchor;
- transformers called directly (bf16 safetensors from the model cache, ``generate``, greedy);
- a prefill of a ~1,000-token prompt on each raw library.

Prints a table and the ratios the performance goals are stated in.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUESTION = (
    "Describe the Tidelight Festival in detail: when it takes place, what happens during it, "
    "and who organises it."
)


# -- workers (each runs in its own process) ------------------------------------------------------


def _llama_worker(messages: list[dict[str, str]], max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    from llama_cpp import Llama

    from ragcli.models.bundled_generator import BUNDLED_GGUF_NAME
    from ragcli.models.llamacpp import CONTEXT_TOKENS, cpu_threads

    cache = Path(os.environ["RAGCLI_MODELS_DIR"])
    threads = cpu_threads()
    llm = Llama(
        model_path=str(cache / BUNDLED_GGUF_NAME),
        n_ctx=CONTEXT_TOKENS,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    loaded = time.perf_counter()
    first = None
    pieces = 0
    stream = llm.create_chat_completion(
        messages, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0, stream=True
    )
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            first = first or time.perf_counter()
            pieces += 1
    done = time.perf_counter()
    return {
        "load_s": loaded - started,
        "first_token_s": (first or done) - loaded,
        "generate_s": done - loaded,
        "tokens": float(pieces),  # one streamed piece per token
        "decode_tokens_per_s": (pieces - 1) / (done - first) if first and pieces > 1 else 0.0,
    }


def _xllamacpp_worker(messages: list[dict[str, str]], max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    import xllamacpp

    from ragcli.models.bundled_generator import BUNDLED_GGUF_NAME
    from ragcli.models.llamacpp import CONTEXT_TOKENS, cpu_threads

    params = xllamacpp.CommonParams()
    params.model.path = str(Path(os.environ["RAGCLI_MODELS_DIR"]) / BUNDLED_GGUF_NAME)
    params.n_ctx = CONTEXT_TOKENS
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = cpu_threads()
    params.verbosity = 0
    server = xllamacpp.Server(params)
    loaded = time.perf_counter()
    marks: dict[str, float] = {"pieces": 0}

    def on_chunk(chunk: dict) -> bool:
        delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
        if delta.get("content"):
            marks.setdefault("first", time.perf_counter())
            marks["pieces"] += 1
        return False

    request = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "top_k": 1}
    server.handle_chat_completions({**request, "stream": True}, on_chunk)
    done = time.perf_counter()
    first, pieces = marks.get("first"), int(marks["pieces"])
    return {
        "load_s": loaded - started,
        "first_token_s": (first or done) - loaded,
        "generate_s": done - loaded,
        "tokens": float(pieces),
        "decode_tokens_per_s": (pieces - 1) / (done - first) if first and pieces > 1 else 0.0,
    }


def _transformers_worker(messages: list[dict[str, str]], max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    from ragcli.models.runtime import prepare_model_runtime
    from ragcli.models.transformers_generator import Generator

    prepare_model_runtime()
    import torch
    from transformers import TextIteratorStreamer

    generator = Generator(None, Path(os.environ["RAGCLI_MODELS_DIR"]))
    generator.load()
    loaded = time.perf_counter()
    inputs = generator.prompt_ids(messages)
    config = generator.generation_config(max_tokens)
    streamer = TextIteratorStreamer(generator.tokenizer, skip_prompt=True)
    import threading

    result: dict = {}

    def run() -> None:
        with torch.inference_mode():
            result["out"] = generator.model.generate(
                **inputs, generation_config=config, streamer=streamer
            )

    thread = threading.Thread(target=run)
    thread.start()
    first = None
    for piece in streamer:
        if piece:
            first = first or time.perf_counter()
    thread.join()
    done = time.perf_counter()
    prompt = int(inputs["input_ids"].shape[1])
    new = int(result["out"].shape[1]) - prompt
    return {
        "load_s": loaded - started,
        "first_token_s": (first or done) - loaded,
        "generate_s": done - loaded,
        "prompt_tokens": float(prompt),
        "tokens": float(new),
        "decode_tokens_per_s": (new - 1) / (done - first) if first and new > 1 else 0.0,
    }


def _prefill_worker(backend: str, messages: list[dict[str, str]]) -> dict[str, float]:
    """Seconds to the first generated token of a long prompt (one token generated)."""
    if backend == "llama.cpp":
        from ragcli.models.generation import open_generator

        generator = open_generator(None, Path(os.environ["RAGCLI_MODELS_DIR"]), backend=backend)
    else:
        from ragcli.models.transformers_generator import Generator

        generator = Generator(None, Path(os.environ["RAGCLI_MODELS_DIR"]))
    generator.load()
    started = time.perf_counter()
    list(generator.stream(messages, 1))
    seconds = time.perf_counter() - started
    return {"prompt_tokens": float(generator.last_prompt_tokens), "prefill_s": seconds}


def worker(argv: list[str]) -> None:
    kind, path = argv[0], argv[1]
    spec = json.loads(Path(path).read_text())
    if kind == "llama":
        out = _llama_worker(spec["messages"], spec["max_tokens"])
    elif kind == "xllamacpp":
        out = _xllamacpp_worker(spec["messages"], spec["max_tokens"])
    elif kind == "transformers":
        out = _transformers_worker(spec["messages"], spec["max_tokens"])
    else:
        out = _prefill_worker(kind.split(":", 1)[1], spec["long"])
    print(json.dumps(out))


# -- the run --------------------------------------------------------------------------------------


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of a command in a fresh process."""
    done = subprocess.run(
        ["/usr/bin/time", "-f", "@@ %e %M", *command],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode not in (0, 7):
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    wall, rss = done.stderr.rsplit("@@ ", 1)[1].split()
    return float(wall), int(rss) / 1024, done.stdout


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("question", nargs="?", default=QUESTION)
    parser.add_argument("--max-tokens", type=int, default=150)
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="ragcli-bench-")
    env = {**os.environ, "RAGCLI_HOME": home}
    env.setdefault("RAGCLI_MODELS_DIR", str(REPO / ".cache" / "models"))
    os.environ.update(env)

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.models.bundled_generator import bundled_gguf
    from ragcli.prompting import build_messages

    settings = load_settings(max_tokens=args.max_tokens)
    pipeline.ingest(settings, ["sample_corpus"])
    bundled_gguf(settings.model_cache_dir, print)

    def words(messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    found = pipeline.search(settings, args.question)
    messages, _ = build_messages(args.question, found.hits, words, 10**9)
    more = pipeline.search(settings, args.question, top_k=12)
    long, _ = build_messages(args.question, more.hits, words, 620)  # ~1,000 tokens
    spec = Path(home) / "prompt.json"
    spec.write_text(json.dumps({"messages": messages, "long": long, "max_tokens": args.max_tokens}))
    me = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    ask = [sys.executable, "-m", "ragcli", "ask", args.question, "--json", "--no-abstain"]
    ask += ["--max-tokens", str(args.max_tokens)]
    rows: dict[str, dict[str, float]] = {}

    from ragcli.models.engines import LLAMA_CPP_PYTHON, XLLAMACPP

    list(pipeline.ask_batch(settings, [("warm", args.question)], abstain=False))  # checks engines
    wall, rss, out = timed([*ask, "--backend", "llama.cpp"], env)
    answer = json.loads(out)
    rows["ragcli ask, llama.cpp"] = {"wall_s": wall, "rss_mib": rss, **answer["timings"]}
    rows["ragcli ask, llama.cpp"]["tokens"] = answer["tokens"]
    print(f"answer ({answer['tokens']} tokens): {answer['answer']}\n", flush=True)
    anchors = []
    if XLLAMACPP.installed():
        wall, rss, out = timed([*me, "xllamacpp", str(spec)], env)
        rows["xllamacpp direct"] = {"wall_s": wall, "rss_mib": rss, **json.loads(out)}
        anchors.append("xllamacpp direct")
    if LLAMA_CPP_PYTHON.installed():
        wall, rss, out = timed([*me, "llama", str(spec)], env)
        rows["llama-cpp-python direct"] = {"wall_s": wall, "rss_mib": rss, **json.loads(out)}
        anchors.append("llama-cpp-python direct")
    wall, rss, out = timed([*me, "prefill:llama.cpp", str(spec)], env)
    rows["prefill, llama.cpp"] = {"wall_s": wall, "rss_mib": rss, **json.loads(out)}
    if not args.skip_transformers:
        wall, rss, out = timed([*ask, "--backend", "transformers"], env)
        answer = json.loads(out)
        rows["ragcli ask, transformers"] = {"wall_s": wall, "rss_mib": rss, **answer["timings"]}
        rows["ragcli ask, transformers"]["tokens"] = answer["tokens"]
        wall, rss, out = timed([*me, "transformers", str(spec)], env)
        rows["transformers bf16 direct"] = {"wall_s": wall, "rss_mib": rss, **json.loads(out)}
        wall, rss, out = timed([*me, "prefill:transformers", str(spec)], env)
        rows["prefill, transformers"] = {"wall_s": wall, "rss_mib": rss, **json.loads(out)}

    print(f"{'run':28} {'wall s':>7} {'RSS MiB':>8} {'load s':>7} {'TTFT s':>7} {'tok/s':>6}")
    for name, r in rows.items():
        load = r.get("generator_load_s", r.get("load_s", 0.0))
        ttft = r.get("first_token_s", r.get("prefill_s", 0.0))
        print(
            f"{name:28} {r['wall_s']:7.2f} {r['rss_mib']:8.0f} {load:7.2f} {ttft:7.2f} "
            f"{r.get('decode_tokens_per_s', 0.0):6.2f}"
        )
    for name in ("prefill, llama.cpp", "prefill, transformers"):
        if name in rows:
            r = rows[name]
            print(
                f"{name}: {int(r['prompt_tokens'])} prompt tokens in {r['prefill_s']:.2f} s "
                f"({r['prompt_tokens'] / r['prefill_s']:.0f} tok/s)"
            )
    fast = rows["ragcli ask, llama.cpp"]
    anchor = min(anchors, key=lambda name: rows[name]["wall_s"])
    print(
        f"answer latency, ragcli ask (whole process) / {anchor} (whole process, the fastest "
        f"called directly): {fast['wall_s'] / rows[anchor]['wall_s']:.2f}  (goal <= 1.25)"
    )
    print(f"peak RSS answering on llama.cpp: {fast['rss_mib']:.0f} MiB  (goal < 2560)")
    if "ragcli ask, transformers" in rows:
        slow = rows["ragcli ask, transformers"]
        raw = rows["transformers bf16 direct"]
        print(
            f"decode, llama.cpp backend / transformers bf16 direct: "
            f"{fast['decode_tokens_per_s'] / raw['decode_tokens_per_s']:.2f}  (goal >= 3)"
        )
        print(
            f"answer latency, ragcli ask llama.cpp / ragcli ask transformers: "
            f"{fast['wall_s'] / slow['wall_s']:.2f}"
        )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    print(f"machine: {cpu}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
