"""A tiny chat model in GGUF, built by the tests: llama.cpp engines without the 1.1 GB model.

Qwen2 architecture, 2 layers of width 64, random weights (Q8_0 matrices, so quantized matrix
kernels run as with a real model), a byte-level BPE vocabulary of the 256 bytes plus ChatML's
special tokens, and a ChatML chat template. It answers gibberish, deterministically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WIDTH, FFN, LAYERS, HEADS, KV_HEADS = 64, 128, 2, 4, 2


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-character map: every byte as one printable character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return [mapping[b] for b in range(256)]


def tiny_chat_gguf(path: Path, seed: int = 0) -> Path:
    from gguf import GGMLQuantizationType, GGUFWriter, TokenType
    from gguf.quants import quantize

    rng = np.random.default_rng(seed)
    tokens = [*_byte_tokens(), "ĠĠ", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [TokenType.NORMAL] * 257 + [TokenType.CONTROL] * 3
    vocab = len(tokens)

    writer = GGUFWriter(str(path), "qwen2")
    writer.add_name("ragcli tiny test model")
    writer.add_context_length(2048)
    writer.add_embedding_length(WIDTH)
    writer.add_feed_forward_length(FFN)
    writer.add_block_count(LAYERS)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(7)  # mostly Q8_0
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["Ġ Ġ"])
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    def dense(name: str, rows: int, columns: int) -> None:
        weights = rng.normal(0, 0.2, (rows, columns)).astype(np.float32)
        packed = quantize(weights, GGMLQuantizationType.Q8_0)
        writer.add_tensor(name, packed, raw_dtype=GGMLQuantizationType.Q8_0)

    def vector(name: str, size: int, value: float | None = None) -> None:
        data = np.full(size, value, np.float32) if value is not None else rng.normal(0, 0.1, size)
        writer.add_tensor(name, data.astype(np.float32))

    head = WIDTH // HEADS
    writer.add_tensor("token_embd.weight", rng.normal(0, 0.5, (vocab, WIDTH)).astype(np.float32))
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        vector(f"{block}.attn_norm.weight", WIDTH, 1.0)
        dense(f"{block}.attn_q.weight", WIDTH, WIDTH)
        vector(f"{block}.attn_q.bias", WIDTH)
        dense(f"{block}.attn_k.weight", KV_HEADS * head, WIDTH)
        vector(f"{block}.attn_k.bias", KV_HEADS * head)
        dense(f"{block}.attn_v.weight", KV_HEADS * head, WIDTH)
        vector(f"{block}.attn_v.bias", KV_HEADS * head)
        dense(f"{block}.attn_output.weight", WIDTH, WIDTH)
        vector(f"{block}.ffn_norm.weight", WIDTH, 1.0)
        dense(f"{block}.ffn_gate.weight", FFN, WIDTH)
        dense(f"{block}.ffn_up.weight", FFN, WIDTH)
        dense(f"{block}.ffn_down.weight", WIDTH, FFN)
    vector("output_norm.weight", WIDTH, 1.0)
    writer.add_tensor("output.weight", rng.normal(0, 0.5, (vocab, WIDTH)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
