"""The encoder's serving paths: variable-length attention over the real tokens only, and the `<s>`-only last layer
of the sequence classifier, each equal to the padded computation."""

import pytest
import torch

from sora_hf import SoraConfig, SoraForSequenceClassification, SoraModel, modeling_sora

LENGTHS = [12, 5, 1, 9]


def tiny_config(attn_implementation: str, **overrides) -> SoraConfig:
    sizes = dict(
        hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128, vocab_size=100
    )
    return SoraConfig(**sizes, num_labels=3, attn_implementation=attn_implementation, **overrides)


def padded_batch(lengths=LENGTHS) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 100, (len(lengths), max(lengths)), generator=generator)
    attention_mask = (torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]).long()
    return input_ids.masked_fill(attention_mask == 0, 0), attention_mask


@pytest.fixture
def padded_attention(monkeypatch):
    """Force the padded attention layout (as when attention weights are recorded) for comparison."""

    def force() -> None:
        monkeypatch.setattr(modeling_sora, "recording", lambda output: True)

    return force


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_varlen_states_equal_each_sequence_alone_and_the_padded_layout(attn_implementation, padded_attention):
    torch.manual_seed(0)
    model = SoraModel(tiny_config(attn_implementation)).eval()
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        varlen = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        alone = [
            model(input_ids=input_ids[i : i + 1, :n]).last_hidden_state[0] for i, n in enumerate(LENGTHS)
        ]
        padded_attention()
        padded = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    for row, length in enumerate(LENGTHS):
        torch.testing.assert_close(varlen[row, :length], alone[row], atol=1e-5, rtol=0)
        torch.testing.assert_close(varlen[row, :length], padded[row, :length], atol=1e-5, rtol=0)


def test_eager_and_sdpa_varlen_paths_agree():
    torch.manual_seed(0)
    eager = SoraModel(tiny_config("eager")).eval()
    sdpa = SoraModel(tiny_config("sdpa")).eval()
    sdpa.load_state_dict(eager.state_dict())
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        states = [
            m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state for m in (eager, sdpa)
        ]
    real = attention_mask.bool()
    torch.testing.assert_close(states[0][real], states[1][real], atol=1e-5, rtol=0)


def test_varlen_gradients_equal_the_padded_layout(padded_attention):
    torch.manual_seed(0)
    model = SoraForSequenceClassification(tiny_config("sdpa", classifier_pooling="mean")).eval()  # no dropout
    input_ids, attention_mask = padded_batch()
    labels = torch.tensor([0, 1, 2, 0])

    def gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    varlen = gradients()
    padded_attention()
    padded = gradients()
    assert varlen.keys() == padded.keys()
    for name in varlen:
        torch.testing.assert_close(varlen[name], padded[name], atol=1e-5, rtol=1e-4, msg=name)


def test_a_row_of_padding_only_leaves_the_other_rows_unchanged():
    torch.manual_seed(0)
    model = SoraModel(tiny_config("sdpa")).eval()
    input_ids, attention_mask = padded_batch()
    attention_mask[2] = 0
    with torch.no_grad():
        states = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        alone = model(input_ids=input_ids[:1]).last_hidden_state
    torch.testing.assert_close(states[0], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_first_token_classifier_equals_the_full_last_layer(attn_implementation):
    torch.manual_seed(0)
    model = SoraForSequenceClassification(tiny_config(attn_implementation)).eval()
    assert model.config.classifier_pooling == "first_token"
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        fast = model(input_ids=input_ids, attention_mask=attention_mask).logits
        # recording hidden states turns the `<s>`-only last layer off
        full = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        alone = torch.cat([model(input_ids=input_ids[i : i + 1, :n]).logits for i, n in enumerate(LENGTHS)])
    assert full.hidden_states[-1].shape == (4, 12, 64)
    torch.testing.assert_close(fast, full.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast, alone, atol=1e-5, rtol=0)


def test_first_token_only_returns_one_position_and_falls_back_on_left_padding():
    torch.manual_seed(0)
    model = SoraModel(tiny_config("sdpa")).eval()
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        first = model.encoder(input_ids=input_ids, attention_mask=attention_mask, first_token_only=True)
        full = model.encoder(input_ids=input_ids, attention_mask=attention_mask)
        left_padded = model.encoder(
            input_ids=input_ids.flip(1), attention_mask=attention_mask.flip(1), first_token_only=True
        )
    assert first.last_hidden_state.shape == (4, 1, 64)
    torch.testing.assert_close(first.last_hidden_state[:, 0], full.last_hidden_state[:, 0], atol=1e-5, rtol=0)
    assert left_padded.last_hidden_state.shape == (4, 12, 64)
