"""Training stage of curatune: LoRA (or full) fine-tuning on a verified bundle, chat, merge."""
