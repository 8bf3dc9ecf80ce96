"""Process-wide set-up for the model libraries: quiet logs, no telemetry, thread count."""

from __future__ import annotations

import logging
import os
import warnings

_done = False
_debug = False


def set_debug(on: bool = True) -> None:
    """``--debug``: library logs and progress bars stay, notes ragcli keeps quiet are shown."""
    global _debug
    _debug = on


def debugging() -> bool:
    """Whether this process runs with ``--debug``."""
    return _debug


def prepare_model_runtime() -> None:
    """Call before importing torch/transformers: keeps their chatter off stdout and stderr."""
    global _done
    if _done:
        return
    _done = True
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if _debug:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # Library progress bars (weight loading, GGUF dequantizing) would clutter stderr; ragcli
    # prints its own notes. tqdm reads this when it is first imported.
    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in ("transformers", "sentence_transformers", "huggingface_hub", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings(
        "ignore", module=r"(transformers|torch|sentence_transformers|accelerate)"
    )


def disable_transformers_progress_bars() -> None:
    """Keep transformers' own progress bars off stderr (unless ``--debug``)."""
    if debugging():
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
