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


def build_random_adapter(model_dir: str | Path, out_dir: str | Path, seed: int = 0, rank: int = 8,
                         template: str | None = None, scale: float = 0.02) -> Path:
    """An untrained LoRA adapter folder on `model_dir`, saved the way `train run` saves one (adapter weights,
    tokenizer, curatune_train.json): for tests and benchmarks of serving, where only shapes matter.

    LoRA's B matrices get random values (peft starts them at zero, which would make every adapter the
    base model); with `template`, the template's marker rows are trainable tokens as in a real run.
    """
    import json
    import warnings

    import torch
    from peft import LoraConfig, get_peft_model

    from train.config import TrainConfig
    from train.model import load_model, load_tokenizer, template_token_ids

    out_dir = Path(out_dir)
    tokenizer = load_tokenizer(str(model_dir), template=template)
    model = load_model(str(model_dir))
    torch.manual_seed(seed)
    tokens = template_token_ids(tokenizer)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", task_type="CAUSAL_LM",
                      lora_dropout=0.0, trainable_token_indices=tokens or None)
    with warnings.catch_warnings():  # peft still calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                param.add_(torch.randn_like(param) * scale)
    peft_model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    cfg = TrainConfig(model=str(model_dir), template=template, lora_rank=rank, lora_alpha=2 * rank)
    info = {"config": cfg.model_dump(), "train_type": "lora", "base_model": str(model_dir),
            "base_model_path": str(Path(model_dir).resolve()), "bundle": None, "steps": 0}
    (out_dir / "curatune_train.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out_dir
