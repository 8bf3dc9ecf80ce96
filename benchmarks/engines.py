"""Generation engines side by side: load, prefill, first token, decode, on real RAG prompts.

    python benchmarks/engines.py [--llama-cpp-python NAME=DIR ...] [--rounds N] [--transformers]
                                 [--only TEXT ...]

Ingests sample_corpus into a temporary collection and builds the prompts ``ragcli ask`` sends
(k=4 passages, ~700-900 tokens) for four sample questions plus one that asks for a long answer.
Each configuration then answers all of them, greedy, in a fresh process: the model is loaded
once, the questions asked one after the other as ``ask --batch`` does. Configurations:

- xllamacpp (the default engine: the prebuilt wheel) as ragcli runs it (no extra buffer
  types), with weights repacked (llama.cpp's default), with the safe settings (one thread),
  with prompt lookup decoding, and without reusing the previous prompt's prefix;
- llama-cpp-python, for each ``NAME=DIR`` given: a folder that ``pip install --target DIR``
  filled with a build of it (e.g. one built with ``make install-native``, one built with
  portable flags and runtime CPU dispatch), as ragcli runs it and with weights repacked; the
  llama-cpp-python installed in this environment, if any (its own prompt lookup decoding
  needs the logits of every prompt token, 2.5 GB here, so it is not measured);
- transformers (bf16, as ragcli falls back to), with ``--transformers``.

Configurations alternate within each round; figures are the medians over rounds. Prints a
table and each configuration's time per answer as a ratio to the fastest.
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
sys.path.insert(0, str(REPO))

QUESTIONS = ["q02", "q05", "q12", "q14"]
LONG = (
    "Describe the Tidelight Festival in detail: when it takes place, what happens during it, "
    "and who organises it."
)


# -- the worker (one configuration, in its own process) ------------------------------------------


def _load_cpu_variants(folder: str) -> None:
    """A build with runtime CPU dispatch keeps its CPU backends (libggml-cpu-*.so) in bin/,
    where llama-cpp-python does not look; load the best one for this CPU from there."""
    import ctypes

    variants = Path(folder) / "bin"
    if not list(variants.glob("libggml-cpu-*.so")):
        return
    ggml = ctypes.CDLL(str(Path(folder) / "llama_cpp" / "lib" / "libggml.so"))
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load_all_from_path(str(variants).encode())


def worker(config: dict, prompts: list[dict]) -> dict:
    started = time.perf_counter()
    if config.get("path"):
        _load_cpu_variants(config["path"])
    if config["engine"] == "transformers":
        from ragcli.models.transformers_generator import Generator

        generator = Generator(None, Path(os.environ["RAGCLI_MODELS_DIR"]))
    else:
        from ragcli.models.bundled_generator import BUNDLED_GENERATOR, BUNDLED_GGUF_NAME
        from ragcli.models.engines import engine_named

        engine = engine_named(config["engine"])
        assert engine is not None
        gguf = Path(os.environ["RAGCLI_MODELS_DIR"]) / BUNDLED_GGUF_NAME
        keys = ("lookup", "reuse_prefix", "extra_buffers")
        options = {key: config[key] for key in keys if key in config}
        generator = engine.make(BUNDLED_GENERATOR, gguf, None, config["variant"], **options)
    generator.load()
    load_s = time.perf_counter() - started
    answers = []
    for prompt in prompts:
        begun = time.perf_counter()
        first = None
        text = []
        for piece in generator.stream(prompt["messages"], prompt["max_tokens"]):
            first = first or time.perf_counter()
            text.append(piece)
        done = time.perf_counter()
        timings = getattr(generator, "last_timings", {}) or {}
        answers.append(
            {
                "prompt_tokens": generator.last_prompt_tokens,
                "cached_tokens": int(timings.get("cache_n", 0)),
                "tokens": generator.last_token_count,
                "first_token_s": (first or done) - begun,
                "answer_s": done - begun,
                "decode_s": done - (first or done),
                "text": "".join(text),
            }
        )
    return {"load_s": load_s, "answers": answers}


# -- the run -------------------------------------------------------------------------------------


def build_prompts(home: str) -> list[dict]:
    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.models.bundled_generator import bundled_gguf
    from ragcli.prompting import build_messages

    settings = load_settings()
    pipeline.ingest(settings, ["sample_corpus"])
    bundled_gguf(settings.model_cache_dir, print)
    by_id = {
        q["id"]: q for q in map(json.loads, (REPO / "sample_corpus" / "questions.jsonl").open())
    }

    def words(messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    prompts = []
    for question, max_tokens in [*((by_id[q]["question"], 96) for q in QUESTIONS), (LONG, 128)]:
        found = pipeline.search(settings, question)
        messages, _ = build_messages(question, found.hits, words, 10**9)
        prompts.append({"question": question, "messages": messages, "max_tokens": max_tokens})
    return prompts


def run(config: dict, prompts_file: Path, env: dict[str, str]) -> dict | None:
    child_env = dict(env)
    if config.get("path"):
        child_env["PYTHONPATH"] = os.pathsep.join([config["path"], str(REPO)])
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(config), str(prompts_file)],
        env=child_env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode != 0:
        print(
            f"{config['name']} failed ({done.returncode}):\n{done.stderr[-3000:]}", file=sys.stderr
        )
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(result: dict) -> dict[str, float]:
    answers = result["answers"]
    first = answers[0]
    later = answers[1:]
    decode_tokens = sum(max(a["tokens"] - 1, 0) for a in answers)
    decode_s = sum(a["decode_s"] for a in answers)
    computed = first["prompt_tokens"] - first["cached_tokens"]
    return {
        "load_s": result["load_s"],
        "prefill_tok_s": computed / first["first_token_s"],
        "first_token_s": statistics.median(a["first_token_s"] for a in later),
        "decode_tok_s": decode_tokens / decode_s if decode_s else 0.0,
        "answer_s": statistics.mean(a["answer_s"] for a in answers),
        "cached": statistics.mean(a["cached_tokens"] for a in later),
        "tokens": statistics.mean(a["tokens"] for a in answers),
    }


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        config = json.loads(sys.argv[2])
        prompts = json.loads(Path(sys.argv[3]).read_text())
        print(json.dumps(worker(config, prompts)))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama-cpp-python", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--transformers", action="store_true")
    parser.add_argument(
        "--only", action="append", default=[], metavar="TEXT", help="configurations named so"
    )
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="ragcli-bench-")
    env = {**os.environ, "RAGCLI_HOME": home}
    env.setdefault("RAGCLI_MODELS_DIR", str(REPO / ".cache" / "models"))
    os.environ.update(env)
    prompts = build_prompts(home)
    prompts_file = Path(home) / "prompts.json"
    prompts_file.write_text(json.dumps(prompts))

    from ragcli.models.engines import LLAMA_CPP_PYTHON, XLLAMACPP, cpu_name

    configs: list[dict] = []
    if XLLAMACPP.installed():
        x = {"engine": "xllamacpp", "variant": "default"}
        configs += [
            {**x, "name": f"xllamacpp {XLLAMACPP.version()}"},
            {**x, "name": "xllamacpp, repacked weights", "extra_buffers": True},
            {**x, "name": "xllamacpp, safe (one thread)", "variant": "safe"},
            {**x, "name": "xllamacpp, prompt lookup", "lookup": True},
            {**x, "name": "xllamacpp, no prefix reuse", "reuse_prefix": False},
        ]
    builds = [tuple(item.split("=", 1)) for item in args.llama_cpp_python]
    if LLAMA_CPP_PYTHON.installed():
        builds.insert(0, ("installed", ""))
    for name, path in builds:
        base = {"engine": "llama-cpp-python", "path": path, "variant": "default"}
        configs += [
            {**base, "name": f"llama-cpp-python {name}"},
            {**base, "name": f"llama-cpp-python {name}, repacked", "extra_buffers": True},
        ]
    if args.transformers:
        configs.append({"engine": "transformers", "name": "transformers bf16", "variant": ""})
    if args.only:
        configs = [c for c in configs if any(text in c["name"] for text in args.only)]

    results: dict[str, list[dict[str, float]]] = {c["name"]: [] for c in configs}
    texts: dict[str, list[str]] = {}
    for round_number in range(args.rounds):
        order = configs if round_number % 2 == 0 else list(reversed(configs))
        for config in order:
            result = run(config, prompts_file, env)
            if result is None:
                continue
            results[config["name"]].append(summarize(result))
            texts[config["name"]] = [a["text"] for a in result["answers"]]
            print(f"round {round_number + 1}: {config['name']} done", file=sys.stderr, flush=True)

    rows = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in results.items()
        if runs
    }
    fastest = min(r["answer_s"] for r in rows.values())
    prompt_tokens = [len(" ".join(m["content"] for m in p["messages"]).split()) for p in prompts]
    print(
        f"{len(prompts)} prompts ({min(prompt_tokens)}-{max(prompt_tokens)} words), "
        f"medians of {args.rounds} rounds"
    )
    header = (
        f"{'configuration':34} {'load s':>6} {'prefill t/s':>11} {'1st tok s':>9} "
        f"{'decode t/s':>10} {'answer s':>8} {'ratio':>6} {'reused':>6}"
    )
    print(header)
    for name, r in rows.items():
        print(
            f"{name:34} {r['load_s']:6.2f} {r['prefill_tok_s']:11.1f} {r['first_token_s']:9.2f} "
            f"{r['decode_tok_s']:10.1f} {r['answer_s']:8.2f} {r['answer_s'] / fastest:6.2f} "
            f"{r['cached']:6.0f}"
        )
    reference = texts.get(configs[0]["name"]) if configs else None
    for name, answers in texts.items():
        same = sum(a == b for a, b in zip(answers, reference or []))
        print(f"{name}: {same}/{len(answers)} answers identical to {configs[0]['name']}")
    print(
        "prefill: tokens computed for the first question / its time to first token; 1st tok: "
        "median time to first token of the later questions (prefix reuse shows here); "
        "answer: mean seconds per question, the model loaded; reused: mean prompt tokens "
        "taken from the previous prompt's cache"
    )
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
