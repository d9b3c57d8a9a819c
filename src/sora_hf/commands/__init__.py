"""Sub-commands of `sora-hf`. Each module defines `register(subparsers)` and sets `func` on its parser."""
