"""Generator on llama.cpp through ``llama-cpp-python``: a GGUF model run as it is, quantized.

The opt-in engine (``make install-native`` compiles it for the machine's CPU): where the CPU
has AVX-512 it fills prompts about 1.7 times faster than the prebuilt xllamacpp, and it is
preferred when installed and its check on this CPU passes (``engines.py``). It renders the
chat template stored in the GGUF file, the same template transformers reads from it, and
streams text as tokens come. Helpers shared with the other engine (context size, threads)
live here too.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from ragcli.errors import ModelError

# The context the model is run with (or its training context, when shorter). Prompts are
# packed to fit it less the answer's tokens; 4096 holds a k=4 prompt several times over,
# and the KV cache for it is small (~115 MB for the bundled model).
CONTEXT_TOKENS = 4096


def context_tokens(gguf: Path) -> int:
    """``CONTEXT_TOKENS``, or the model's training context when that is shorter."""
    from ragcli.models.modelfiles import gguf_facts

    try:
        trained = gguf_facts([gguf]).max_tokens
    except (OSError, ValueError):
        trained = None
    return min(CONTEXT_TOKENS, trained) if trained else CONTEXT_TOKENS


@contextlib.contextmanager
def _model_params(**fields: Any) -> Iterator[None]:
    """Model parameters that ``Llama()`` has no argument for, set while it is constructed."""
    import llama_cpp.llama_cpp as raw

    default = raw.llama_model_default_params

    def adjusted() -> Any:
        params = default()
        for name, value in fields.items():
            if hasattr(params, name):
                setattr(params, name, value)
        return params

    raw.llama_model_default_params = adjusted
    try:
        yield
    finally:
        raw.llama_model_default_params = default


def llama_cpp_installed() -> bool:
    """Whether ``llama-cpp-python`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def cpu_threads() -> int:
    """Cores this process may run on (llama.cpp's own default is half of them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LlamaCppGenerator:
    """A GGUF chat model in llama.cpp, loaded on first use; same interface as ``Generator``.

    llama.cpp's extra buffer types (weights repacked for a CPU-specific matrix path, and the
    AMX path of a build made on a CPU with AMX, which crashes on some Xeons) are off unless
    ``extra_buffers``: without them, ragcli's prompts were filled faster on the CPUs measured
    (README, "Performance"). ``safe`` runs one thread (no OpenMP worker threads). The
    binding's own prompt lookup decoding is not used: it keeps the logits of every prompt
    token (2.5 GB for the bundled model at 4,096 tokens of context).
    """

    engine = "llama-cpp-python"

    def __init__(
        self,
        name: str,
        gguf: Path | None = None,
        prepare: Any = None,
        safe: bool = False,
        extra_buffers: bool = False,
    ) -> None:
        """``gguf``: the model file, or None with ``prepare`` giving it on first use."""
        self.name = name
        self._gguf = gguf
        self._prepare = prepare
        self.safe = safe
        self.extra_buffers = extra_buffers
        self.load_seconds = 0.0
        self.last_prompt_tokens = 0
        self.last_token_count = 0

    @staticmethod
    def import_library() -> Any:
        """The llama_cpp package (which loads the compiled library)."""
        import llama_cpp

        return llama_cpp

    @cached_property
    def llm(self) -> Any:
        path = self._gguf if self._gguf is not None else self._prepare()
        started = time.perf_counter()
        from llama_cpp import Llama

        threads = 1 if self.safe else cpu_threads()
        try:
            with _model_params(use_extra_bufts=self.extra_buffers):
                llm = Llama(
                    model_path=str(path),
                    n_ctx=context_tokens(Path(path)),
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
        except Exception as e:
            raise ModelError(
                f"cannot load generator {self.name!r} with llama.cpp: {type(e).__name__}: {e}",
                "check that the file is a complete GGUF model, or use --backend transformers",
            ) from e
        if not llm.metadata.get("tokenizer.chat_template"):
            raise ModelError(
                f"generator {self.name!r} has no chat template",
                "use an instruction-tuned (chat) model",
            )
        self.load_seconds = time.perf_counter() - started
        return llm

    @cached_property
    def _pieces(self) -> dict[int, bytes]:
        return {}

    def piece(self, token: int) -> bytes:
        """The bytes of one token (llama-cpp-python's own ``detokenize`` drops pieces longer
        than 32 bytes, such as the long runs of spaces a code model has as single tokens)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        import ctypes

        import llama_cpp

        vocab = getattr(getattr(self.llm, "_model", None), "vocab", None)
        if vocab is None:  # another llama-cpp-python layout: its own detokenizer
            return bytes(self.llm.detokenize([token]))
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
            if n >= 0:
                break
            size = -n
        self._pieces[token] = piece = buffer.raw[:n]
        return piece

    def load(self) -> None:
        """Load the model now rather than at the first prompt."""
        self.llm  # noqa: B018

    @property
    def context_window(self) -> int:
        return int(self.llm.n_ctx())

    @cached_property
    def _formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm

        def text_of(token: int) -> str:
            return (
                llm.detokenize([token], special=True).decode("utf-8", "replace")
                if token >= 0
                else ""
            )

        return Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"],
            eos_token=text_of(llm.token_eos()),
            bos_token=text_of(llm.token_bos()),
        )

    @cached_property
    def stop_tokens(self) -> frozenset[int]:
        """End of sequence, and the end-of-turn markers the vocabulary has as one token."""
        llm = self.llm
        stop = {llm.token_eos()}
        from ragcli.models.transformers_generator import END_OF_TURN

        for marker in END_OF_TURN:
            ids = llm.tokenize(marker.encode(), add_bos=False, special=True)
            if len(ids) == 1:
                stop.add(ids[0])
        return frozenset(t for t in stop if t >= 0)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat template applied to ``messages``, with the assistant turn opened."""
        prompt = self._formatter(messages=messages).prompt
        # The template writes any BOS itself, as transformers' apply_chat_template does.
        return list(self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self.prompt_ids(messages))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.llm.tokenize(t.encode("utf-8"), add_bos=False)) for t in texts]

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated; ``last_token_count`` is set at the end.

        Greedy when ``temperature`` is 0; sampling is reproducible for a given ``seed``.
        """
        llm = self.llm
        ids = self.prompt_ids(messages)
        self.last_prompt_tokens = len(ids)
        self.last_token_count = 0
        if seed is not None:
            llm.set_seed(seed)
        # Sampling as transformers does by default: top-k 50, no top-p/min-p, no penalty.
        tokens = llm.generate(
            ids,
            temp=temperature if temperature > 0 else 0.0,
            top_k=50,
            top_p=1.0,
            min_p=0.0,
            repeat_penalty=1.0,
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stop = self.stop_tokens
        try:
            for token in tokens:
                if token in stop:
                    break
                self.last_token_count += 1
                text = decoder.decode(self.piece(token))
                if text:
                    yield text
                if self.last_token_count >= max_new_tokens:
                    break
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"generation failed: {type(e).__name__}: {e}") from e
        finally:
            tokens.close()
        if rest := decoder.decode(b"", final=True):
            yield rest
