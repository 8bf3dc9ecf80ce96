"""The ragcli command line with the fake embedder, for tests that need processes of their own.

``python -m tests.fakecli ingest ...`` from the repository root; ``RAGCLI_TEST_EMBED_DELAY``
(seconds) slows each embedding batch so a test can kill the process in the middle;
``RAGCLI_TEST_TOKEN_DELAY`` slows each generated word, so a server test can catch an answer
while it is being written.
"""

from __future__ import annotations

import os
import time

from ragcli.cli import main
from ragcli.models import embedding, generation
from tests.conftest import FakeEmbedder, FakeGenerator


class SlowFakeEmbedder(FakeEmbedder):
    def embed_documents(self, texts, normalize=True):  # type: ignore[no-untyped-def]
        time.sleep(float(os.environ.get("RAGCLI_TEST_EMBED_DELAY", "0")))
        return super().embed_documents(texts, normalize)


class SlowFakeGenerator(FakeGenerator):
    def stream(self, messages, max_new_tokens, temperature=0.0, seed=None):  # type: ignore[no-untyped-def]
        delay = float(os.environ.get("RAGCLI_TEST_TOKEN_DELAY", "0"))
        for word in super().stream(messages, max_new_tokens, temperature, seed):
            time.sleep(delay)
            yield word


embedding.open_embedder = SlowFakeEmbedder  # type: ignore[assignment]
generation.open_generator = SlowFakeGenerator  # type: ignore[assignment]

if __name__ == "__main__":
    main()
