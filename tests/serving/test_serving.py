"""`sora_hf.serving.pack_linear_weights`: oneDNN-packed Linear layers give the logits of the plain model (Sora and
an in-library BERT alike), refuse training and stale weights, and copy without the opaque packed tensor."""

import copy

import pytest
import torch
from conftest import TINY_SORA
from transformers import BertConfig, BertForSequenceClassification

from sora_hf import SoraConfig, SoraForSequenceClassification
from sora_hf.serving import PackedLinear, pack_linear_weights

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def padded_batch() -> dict[str, torch.Tensor]:
    input_ids = torch.randint(5, 120, (3, 9), generator=torch.Generator().manual_seed(0))
    attention_mask = (torch.arange(9)[None] < torch.tensor([9, 4, 1])[:, None]).long()
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.mark.parametrize("family", ["sora", "bert"])
def test_packed_model_gives_the_plain_logits(family):
    torch.manual_seed(0)
    if family == "sora":
        model = SoraForSequenceClassification(SoraConfig(**TINY_SORA))
    else:
        sizes = {k: v for k, v in TINY_SORA.items()}
        model = BertForSequenceClassification(BertConfig(**sizes))
    model.eval()
    batch = padded_batch()
    with torch.no_grad():
        plain = model(**batch).logits
        packed_model = pack_linear_weights(copy.deepcopy(model))
        packed = packed_model(**batch).logits
    assert any(isinstance(module, PackedLinear) for module in packed_model.modules())
    assert not any(type(module) is torch.nn.Linear for module in packed_model.modules())
    torch.testing.assert_close(packed, plain, atol=1e-5, rtol=0)


def test_packed_model_refuses_training_and_stale_weights_and_copies_unpacked():
    torch.manual_seed(0)
    model = pack_linear_weights(SoraForSequenceClassification(SoraConfig(**TINY_SORA)))
    batch = padded_batch()
    with pytest.raises(ValueError, match="for inference"):
        model(**batch)  # autograd on
    copied = copy.deepcopy(model)
    assert copied.classifier.packed_weight.tensor is None  # the opaque oneDNN tensor is not copied
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
        with pytest.raises(ValueError, match="changed after it was packed"):
            model(**batch)
    with pytest.raises(ValueError, match="no nn.Linear layer"):
        pack_linear_weights(model)
