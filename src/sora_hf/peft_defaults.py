"""peft defaults for model_type "sora": which modules each tuner targets when `target_modules` is not given.

`peft` picks default target modules by `config.model_type` from one table per tuner; `register_peft_defaults`
adds a "sora" row to each, so `get_peft_model(model, LoraConfig(task_type=...))` needs no `target_modules`.

Sora module names: self-attention `qkv_proj` (fused query/key/value) and `o_proj`; decoder cross-attention
`q_proj`, `kv_proj` (fused key/value) and `o_proj`; MLP `fc1`, `fc2`; LayerNorms `self_attn_layer_norm`,
`encoder_attn_layer_norm`, `final_layer_norm` (BART's names). Heads are named as peft expects: `classifier`
(sequence and token classification) and `qa_outputs` (question answering) land in `modules_to_save`.

The sequence-classification `pooler` is not in `modules_to_save` by default, like BERT's pooler under peft: it
is pretrained (next-sentence prediction, in `SoraForPreTraining`) and loads with the checkpoint, so it stays
frozen with the rest of the body. Pass `modules_to_save=["pooler"]` to train and save it too.
"""

from __future__ import annotations

# Projections that carry queries, keys and values: fused in self-attention, split in cross-attention.
SORA_ATTENTION_MODULES = ["qkv_proj", "q_proj", "kv_proj"]
# Every linear layer of every block (what peft's BART rows list for AdaLoRA and VB-LoRA).
SORA_BLOCK_LINEAR_MODULES = ["qkv_proj", "q_proj", "kv_proj", "o_proj", "fc1", "fc2"]

# Per tuner (peft's PeftType value), when its BART/BERT row is not "the attention projections".
SORA_PEFT_TARGET_MODULES: dict[str, list[str]] = {
    "ADALORA": SORA_BLOCK_LINEAR_MODULES,
    "VBLORA": SORA_BLOCK_LINEAR_MODULES,
    # (IA)^3 rescales keys, values and the feed-forward input (the paper's three places).
    "IA3": ["qkv_proj", "kv_proj", "fc2"],
    "BEFT": ["qkv_proj", "kv_proj"],
    "LN_TUNING": ["self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"],
}
SORA_IA3_FEEDFORWARD_MODULES = ["fc2"]


def register_peft_defaults() -> None:
    """Add model_type "sora" to the default-target table of every peft tuner that has rows for BART or BERT."""
    try:
        from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
        from peft.utils import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
        )
    except ImportError:
        return
    for peft_type, tuner_class in PEFT_TYPE_TO_TUNER_MAPPING.items():
        # Tuners read their own table (`target_module_mapping`); many tables are copies of LoRA's.
        table = getattr(tuner_class, "target_module_mapping", None)
        if isinstance(table, dict) and ("bart" in table or "bert" in table):
            table.setdefault(
                "sora", list(SORA_PEFT_TARGET_MODULES.get(peft_type.value, SORA_ATTENTION_MODULES))
            )
    # (IA)^3 reads the module-level tables instead of a class attribute.
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING.setdefault(
        "sora", list(SORA_PEFT_TARGET_MODULES["IA3"])
    )
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.setdefault(
        "sora", list(SORA_IA3_FEEDFORWARD_MODULES)
    )
