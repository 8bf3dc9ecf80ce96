"""The neural parts: embedders, generators and their engines, model files and the catalogue.

``embedding`` (sentence-transformers embedders; ``open_embedder`` and ``embedder_for`` are
where every embedder is made), ``onnxembed`` (the ONNX query path, without torch),
``onnxexport`` (making that export) and ``onnxcache`` (finding it in the model cache),
``generation`` (``open_generator``: backend and engine choice), ``bundled_generator`` (the
bundled GGUF, assembled and verified), ``gguf_conversion`` (GGUF to bf16 for transformers),
``transformers_generator`` (the transformers generator), ``engines`` (which llama.cpp engine
works on this CPU), ``xllama`` and ``llamacpp`` (the two llama.cpp engines), ``modelfiles``
(facts read from model files without loading them), ``catalog`` (``ragcli models``),
``preparing`` (``ragcli models prepare``), ``runtime`` (quiet model libraries).
"""
