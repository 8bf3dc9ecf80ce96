"""Generator on llama.cpp through ``xllamacpp``: a prebuilt binding, installed without a compiler.

The default engine for GGUF models. Its Linux wheel is built for any x86-64 CPU with AVX2
(no ``-march=native``, no AVX-512 or AMX code), so it runs the same on every machine it is
installed on, and ``pip install`` takes seconds. Decoding is bound by memory bandwidth, so the
missing AVX-512 costs little (README, "Performance").

xllamacpp embeds llama.cpp's own server: a request is a chat completion that the server
renders with the chat template stored in the GGUF file (the one transformers renders too),
streamed back through a callback. The server keeps the last prompt's KV cache and reuses its
longest common prefix, so questions asked in one process share the work on the fixed part of
the prompt. Counting tokens has no Python call; it goes through the server's loopback HTTP
listener, which ragcli locks with a random API key.
"""

from __future__ import annotations

import ctypes
import http.client
import importlib.util
import json
import queue
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from ragcli.errors import ModelError
from ragcli.models import runtime
from ragcli.models.llamacpp import context_tokens, cpu_threads

# Prompt lookup decoding: draft tokens by finding the last few generated tokens earlier in
# the prompt and proposing what followed them there. RAG answers copy phrases from the
# passages, which is where it helps; the output is the same as without it.
LOOKUP_NGRAM = 3
LOOKUP_DRAFT = 8
_END = object()  # end of a stream, on the queue between the server's thread and the caller


class XLlamaGenerator:
    """A GGUF chat model run by xllamacpp, loaded on first use; same interface as ``Generator``.

    llama.cpp's extra buffer types (weights repacked for a CPU-specific matrix path) are off
    unless ``extra_buffers``: without them, ragcli's prompts were filled faster on the CPUs
    measured (README, "Performance"). ``safe`` runs one thread (no OpenMP worker threads, where
    per-thread CPU state has broken native code before); ``lookup`` turns on prompt lookup
    decoding; ``reuse_prefix`` off recomputes every prompt from its first token.
    """

    engine = "xllamacpp"

    def __init__(
        self,
        name: str,
        gguf: Path | None = None,
        prepare: Callable[[], Path] | None = None,
        safe: bool = False,
        lookup: bool = False,
        reuse_prefix: bool = True,
        extra_buffers: bool = False,
    ) -> None:
        self.name = name
        self._gguf = gguf
        self._prepare = prepare
        self.safe = safe
        self.lookup = lookup
        self.reuse_prefix = reuse_prefix
        self.extra_buffers = extra_buffers
        self.load_seconds = 0.0
        self.last_prompt_tokens = 0
        self.last_token_count = 0
        self.last_timings: dict[str, float] = {}
        self._key = secrets.token_hex(16)
        self._n_ctx = 0

    @staticmethod
    def import_library() -> Any:
        """The xllamacpp module; its library links the GNU OpenMP runtime (libgomp.so.1),
        which a system without a compiler may lack: torch ships one, loaded first if need be."""
        try:
            ctypes.CDLL("libgomp.so.1", mode=ctypes.RTLD_GLOBAL)
        except OSError:
            spec = importlib.util.find_spec("torch")  # found, not imported
            folders = spec.submodule_search_locations if spec else None
            for folder in folders or []:
                bundled = Path(folder) / "lib" / "libgomp.so.1"
                if bundled.is_file():
                    ctypes.CDLL(str(bundled), mode=ctypes.RTLD_GLOBAL)
                    break
        import xllamacpp

        return xllamacpp

    @cached_property
    def server(self) -> Any:
        path = Path(self._gguf if self._gguf is not None else self._prepare())  # type: ignore[misc]
        started = time.perf_counter()
        try:
            xllamacpp = self.import_library()
        except (ImportError, OSError) as e:
            raise ModelError(
                f"cannot import xllamacpp: {e}",
                "reinstall ragcli (pip install -e .); xllamacpp needs a CPU with AVX2",
            ) from e
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        self._n_ctx = params.n_ctx = context_tokens(path)
        params.n_parallel = 1
        threads = 1 if self.safe else cpu_threads()
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.warmup = False
        params.cache_prompt = True
        params.no_extra_bufts = not self.extra_buffers
        params.verbosity = 3 if runtime.debugging() else 0
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [self._key]  # the listener is on loopback; nobody else may use it
        if self.lookup:
            speculative = params.speculative
            speculative.types = [
                xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE
            ]
            speculative.ngram_simple.size_n = LOOKUP_NGRAM
            speculative.ngram_simple.size_m = LOOKUP_DRAFT
        try:
            server = xllamacpp.Server(params)
        except Exception as e:
            raise ModelError(
                f"cannot load generator {self.name!r} with xllamacpp: {type(e).__name__}: {e}",
                "check that the file is a complete GGUF chat model, or use --backend transformers",
            ) from e
        self.load_seconds = time.perf_counter() - started
        return server

    def load(self) -> None:
        """Load the model now rather than at the first prompt."""
        self.server  # noqa: B018

    @property
    def context_window(self) -> int:
        self.load()
        return self._n_ctx

    @cached_property
    def _address(self) -> tuple[str, int]:
        url = urllib.parse.urlsplit(self.server.listening_address)
        return url.hostname or "127.0.0.1", url.port or 80

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A request to the server's loopback listener (for what has no Python call)."""
        host, port = self._address
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            connection.request(
                "POST",
                path,
                json.dumps(body),
                {"Content-Type": "application/json", "Authorization": f"Bearer {self._key}"},
            )
            response = connection.getresponse()
            data = json.loads(response.read() or b"{}")
        except (OSError, ValueError) as e:
            raise ModelError(f"xllamacpp did not answer {path}: {e}") from e
        finally:
            connection.close()
        if response.status != 200:
            message = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
            raise ModelError(f"xllamacpp refused {path}: {message or response.status}")
        return data

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens of the chat template applied to ``messages``, the assistant turn opened."""
        return int(
            self._post("/v1/chat/completions/input_tokens", {"messages": messages})["input_tokens"]
        )

    def yes_probability(self, messages: list[dict[str, str]]) -> float | None:
        """How likely the reply to ``messages`` starts with "yes" rather than "no" (one token
        scored, nothing sampled; the prompt cache holds what the conversation shares)."""
        from ragcli.models.generation import yes_share

        data = self._post(
            "/v1/chat/completions",
            {
                "messages": messages,
                "max_tokens": 1,
                "logprobs": True,
                "top_logprobs": 20,
                "temperature": 0.0,
                "cache_prompt": self.reuse_prefix,
            },
        )
        try:
            first = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        except (KeyError, IndexError, TypeError):
            return None
        return yes_share((str(t["token"]), float(t["logprob"])) for t in first)

    def _request(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> dict[str, Any]:
        # Sampling as transformers does by default: top-k 50, no top-p/min-p, no penalty.
        request: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_new_tokens,
            "stream": True,
            "cache_prompt": self.reuse_prefix,
            "temperature": temperature if temperature > 0 else 0.0,
            "top_k": 50 if temperature > 0 else 1,
            "top_p": 1.0,
            "min_p": 0.0,
            "repeat_penalty": 1.0,
        }
        if seed is not None:
            request["seed"] = seed
        return request

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated; ``last_token_count`` is set at the end.

        Greedy when ``temperature`` is 0; sampling is reproducible for a given ``seed``.
        Closing the iterator early (or Ctrl-C) cancels the request in the server.
        """
        server = self.server
        request = self._request(messages, max_new_tokens, temperature, seed)
        events: queue.Queue[Any] = queue.Queue()
        cancelled = threading.Event()

        def on_event(event: Any) -> bool:
            events.put(event)
            return cancelled.is_set()  # True stops reading, which cancels the request

        def run() -> None:
            try:
                server.handle_chat_completions(request, on_event)
            except BaseException as e:  # surfaced in the caller's thread below
                events.put(e)
            finally:
                events.put(_END)

        self.last_prompt_tokens = self.last_token_count = 0
        self.last_timings = {}
        worker = threading.Thread(target=run, name="ragcli-xllamacpp", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    event = events.get(timeout=0.2)  # a timeout keeps Ctrl-C responsive
                except queue.Empty:
                    continue
                if event is _END:
                    break
                if isinstance(event, BaseException):
                    raise ModelError(f"generation failed: {type(event).__name__}: {event}")
                text = self._take(event)
                if text:
                    yield text
        finally:
            cancelled.set()
            worker.join()

    def _take(self, event: dict[str, Any]) -> str:
        """The text of one streamed chunk; records the counts the last one carries."""
        if "error" in event or ("code" in event and "message" in event):
            error = event.get("error", event)
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ModelError(f"generation failed: {message}")
        timings = event.get("timings")
        if isinstance(timings, dict):
            self.last_timings = {k: float(v) for k, v in timings.items()}
            self.last_prompt_tokens = int(timings.get("prompt_n", 0) + timings.get("cache_n", 0))
            self.last_token_count = int(timings.get("predicted_n", 0))
        choices = event.get("choices") or [{}]
        return str((choices[0].get("delta") or {}).get("content") or "")
