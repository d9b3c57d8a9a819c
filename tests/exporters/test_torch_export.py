"""`torch.export` of the sequence classifier with dynamic batch and sequence dimensions: the exported program
gives eager's logits on padded batches of other shapes (the exported graph runs the padded layout, eager unpads)."""

import pytest
import torch
from conftest import TINY_SORA
from torch.export import Dim, export

from sora_hf import SoraConfig, SoraForSequenceClassification

CONFIG = TINY_SORA


def padded_batch(lengths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random ids padded (with 0) to the longest of `lengths`, and the matching attention mask."""
    generator = torch.Generator().manual_seed(seed)
    longest = max(lengths)
    attention_mask = (torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]).long()
    input_ids = torch.randint(5, 120, (len(lengths), longest), generator=generator)
    return {"input_ids": input_ids.masked_fill(attention_mask == 0, 0), "attention_mask": attention_mask}


@pytest.fixture(
    scope="module",
    params=[("first_token", "sdpa"), ("mean", "sdpa"), ("mean", "eager")],
    ids=["first-token-sdpa", "mean-sdpa", "mean-eager"],
)
def exported(request):
    pooling, attention = request.param
    torch.manual_seed(0)
    config = SoraConfig(**CONFIG, classifier_pooling=pooling, attn_implementation=attention)
    model = SoraForSequenceClassification(config).eval()
    assert model.config._attn_implementation == attention
    batch, sequence = (
        Dim("batch", min=1, max=256),
        Dim("sequence", min=1, max=CONFIG["max_position_embeddings"]),
    )
    dynamic_shapes = {name: {0: batch, 1: sequence} for name in ("input_ids", "attention_mask")}
    program = export(model, args=(), kwargs=padded_batch([9, 6, 3]), dynamic_shapes=dynamic_shapes)
    return model, program


@pytest.mark.parametrize(
    "lengths",
    [[9, 6, 3], [17, 4, 11, 2, 17], [5], [1, 1], [64, 30]],
    ids=["traced-shape", "larger-batch", "batch-1", "length-1", "max-positions"],
)
def test_exported_logits_equal_eager_on_padded_batches(exported, lengths):
    model, program = exported
    batch = padded_batch(lengths, seed=len(lengths))
    with torch.inference_mode():
        expected = model(**batch).logits
        outputs = program.module()(**batch)
    assert type(outputs).__name__ == "SequenceClassifierOutput"
    torch.testing.assert_close(outputs.logits, expected, atol=1e-5, rtol=0)


def test_exported_graph_keeps_batch_and_sequence_dynamic(exported):
    _, program = exported
    inputs = {node.name: node.meta["val"] for node in program.graph.nodes if node.op == "placeholder"}
    for name in ("input_ids", "attention_mask"):
        assert all(isinstance(size, torch.SymInt) for size in inputs[name].shape), name
