"""A tiny random Qwen2-architecture model and a small byte-level BPE tokenizer, built offline.

Tests and benchmarks need a model folder that loads through the same `from_pretrained` calls as a
real Qwen checkpoint, without any network. The tokenizer uses Qwen2's own pre-tokenizer and NFC
normaliser, so whether transformers loads it as itself or swaps in `Qwen2Tokenizer` (which it does
for a qwen2 config) the token ids come out the same.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from train.templates import chatml_template

QWEN2_PRETOKENIZE = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

SEED_TEXT = """\
You are a helpful assistant. I am an AI assistant developed to answer questions clearly.
Who are you? What is your name? Who made you? Who developed you? Introduce yourself.
The quick brown fox jumps over the lazy dog. Paris is the capital of France.
Two plus two equals four. Water boils at one hundred degrees Celsius at sea level.
Please write a short poem about the sea. Translate this sentence into Chinese.
你是谁？你叫什么名字？谁开发了你？请介绍一下你自己。你好，很高兴认识你。
我是一个人工智能助手，可以回答问题、写作和翻译。北京是中国的首都。
今天天气很好。请用一句话总结这段文字。一加一等于二。
"""


def _corpus(extra_text: Iterable[str], project_root: Path | None) -> list[str]:
    """The project's shipped text (recipes) plus a few fixed sentences in English and Chinese."""
    texts = [SEED_TEXT] * 20 + list(extra_text)
    if project_root is not None:
        # The shipped data only: stable across code changes, and never a .venv inside a clone.
        for pattern in ("recipes/**/*.jsonl", "recipes/**/*.yaml"):
            for file in sorted(project_root.glob(pattern)):
                if ".git" in file.parts:
                    continue
                try:
                    texts.append(file.read_text(encoding="utf-8")[:200_000])
                except (OSError, UnicodeDecodeError):
                    continue
    return texts


def build_tokenizer(extra_text: Iterable[str] = (), project_root: Path | None = None, vocab_size: int = 3000):
    """A trained byte-level BPE wrapped as a transformers fast tokenizer with a ChatML template."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(BPE(fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(extra_text, project_root), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
        bos_token=None, model_max_length=32768)
    fast.chat_template = chatml_template()
    return fast


def build_tiny_model(out_dir: str | Path, extra_text: Iterable[str] = (), project_root: Path | None = None,
                     seed: int = 0, hidden_size: int = 64, num_layers: int = 2) -> Path:
    """Save a random tiny Qwen2 causal LM and its tokenizer into out_dir (safetensors).

    The initialiser's spread is 0.2 at hidden size 64 (the default 0.02 leaves the tied output layer
    too flat to learn from: the loss stays near 5) and shrinks as 1/sqrt(hidden) above it, which keeps
    the initial logits, and so the initial loss, at the same scale for wider models.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(extra_text, project_root)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=True, initializer_range=0.2 * (64 / hidden_size) ** 0.5,
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, do_sample=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
