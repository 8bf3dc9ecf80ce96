"""The ragcli command line with the fake embedder, for tests that need processes of their own.

``python -m tests.fakecli ingest ...`` from the repository root; ``RAGCLI_TEST_EMBED_DELAY``
(seconds) slows each embedding batch so a test can kill the process in the middle.
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


embedding.open_embedder = SlowFakeEmbedder  # type: ignore[assignment]
generation.open_generator = FakeGenerator  # type: ignore[assignment]

if __name__ == "__main__":
    main()
