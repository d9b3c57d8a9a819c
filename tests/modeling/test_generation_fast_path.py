"""The fast generation paths give the tokens of the default `generate`: static cache, compiled step, beam reordering."""

import pytest
import torch
from conftest import BATCH, TEXTS, save_tiny_sora
from transformers import AutoTokenizer, CompileConfig

from sora_hf import SoraForConditionalGeneration

NEW_TOKENS = 12


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory) -> tuple[SoraForConditionalGeneration, dict]:
    """A tiny random seq2seq Sora with end-of-sequence disabled (every row generates `NEW_TOKENS`), and a batch."""
    folder = save_tiny_sora(
        tmp_path_factory.mktemp("tiny_seq2seq"),
        TEXTS,
        model_class=SoraForConditionalGeneration,
        is_encoder_decoder=True,
        initializer_range=0.5,  # larger weights: greedy tokens vary and no two logits come close
    )
    model = SoraForConditionalGeneration.from_pretrained(folder, attn_implementation="sdpa").eval()
    model.generation_config.eos_token_id = None
    inputs = AutoTokenizer.from_pretrained(folder)(BATCH, padding=True, return_tensors="pt")
    assert not inputs["attention_mask"].all()  # the batch is padded
    return model, {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}


def test_static_cache_gives_the_dynamic_cache_tokens(seq2seq):
    model, inputs = seq2seq
    dynamic = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
    static = model.generate(
        **inputs, max_new_tokens=NEW_TOKENS, do_sample=False, cache_implementation="static"
    )
    assert dynamic.shape == (len(BATCH), NEW_TOKENS + 1)
    assert len(set(dynamic[:, 1:].flatten().tolist())) > 3  # not one repeated token
    assert torch.equal(static, dynamic)


def test_compiled_static_cache_step_gives_the_dynamic_cache_tokens(seq2seq):
    model, inputs = seq2seq
    dynamic = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
    torch._dynamo.reset()
    compiled = model.generate(
        **inputs,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        cache_implementation="static",
        compile_config=CompileConfig(fullgraph=True, dynamic=False, mode="default"),
    )
    assert hasattr(model, "_compiled_call")  # on CPU too: an explicit compile_config compiles the step
    assert torch.equal(compiled, dynamic)


@pytest.mark.parametrize("cache_implementation", [None, "static"])
def test_beam_search_with_cache_gives_the_uncached_beams(seq2seq, cache_implementation):
    """Beam reordering leaves the cross-attention cache alone: beams never move to another example."""
    model, inputs = seq2seq
    options = dict(max_new_tokens=NEW_TOKENS, num_beams=3, num_return_sequences=2, do_sample=False)
    uncached = model.generate(**inputs, **options, use_cache=False)
    cached = model.generate(**inputs, **options, cache_implementation=cache_implementation)
    assert cached.shape == (2 * len(BATCH), NEW_TOKENS + 1)
    assert torch.equal(cached, uncached)


def test_generate_packs_the_lm_head_for_the_call_only_and_gives_the_plain_tokens(seq2seq):
    """`generate` serves the LM head through oneDNN's packed weight for the call alone: same tokens as the plain head,
    and the model keeps its `nn.Linear` (training, saving and weight edits see no packed copy)."""
    from transformers import GenerationMixin

    model, inputs = seq2seq
    options = dict(max_new_tokens=NEW_TOKENS, do_sample=False)
    packed = model.generate(**inputs, **options)
    plain = GenerationMixin.generate(model, **inputs, **options)
    assert torch.equal(packed, plain)
    assert type(model.lm_head) is torch.nn.Linear
