"""ONNX export of Sora through Optimum, run by ONNX Runtime: logits and greedy tokens match PyTorch."""

import importlib.util

import pytest
import torch
from conftest import BATCH, TEXTS, save_tiny_sora

pytest.importorskip("onnxruntime", reason="the `onnx` extra (onnxruntime) is not installed")
pytest.importorskip("onnx", reason="the `onnx` extra (onnx) is not installed")
if importlib.util.find_spec("optimum.exporters.onnx") is None:
    pytest.skip("the `onnx` extra (optimum-onnx) is not installed", allow_module_level=True)

# first: it adds the transformers-4 names optimum.onnxruntime imports
from sora_hf.exporters.onnx import export_onnx, main  # noqa: E402

# isort: split
from optimum.onnxruntime import (  # noqa: E402
    ORTModelForSeq2SeqLM,
    ORTModelForSequenceClassification,
    ORTModelForTokenClassification,
)
from transformers import AutoTokenizer  # noqa: E402
from transformers.modeling_outputs import Seq2SeqLMOutput, SequenceClassifierOutput  # noqa: E402

from sora_hf import (  # noqa: E402
    SoraForConditionalGeneration,
    SoraForSequenceClassification,
    SoraForTokenClassification,
)

# Larger weights than the default 0.02 so that logits (and greedy tokens) differ between inputs.
INIT = {"initializer_range": 0.3}


def padded_batch(folder: str) -> dict[str, torch.Tensor]:
    """BATCH tokenized with the checkpoint's tokenizer, padded to its longest text."""
    batch = AutoTokenizer.from_pretrained(folder)(BATCH, padding=True, return_tensors="pt")
    assert len(set(batch["attention_mask"].sum(-1).tolist())) == len(BATCH)  # really three lengths
    return dict(batch)


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("sora_cls")
    return save_tiny_sora(folder, TEXTS, model_class=SoraForSequenceClassification, num_labels=3, **INIT)


@pytest.fixture(scope="module")
def seq2seq_folder(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("sora_s2s")
    return save_tiny_sora(
        folder, TEXTS, model_class=SoraForConditionalGeneration, is_encoder_decoder=True, **INIT
    )


def test_sequence_classification_matches_pytorch(classifier_folder, tmp_path):
    output_dir = export_onnx(classifier_folder, tmp_path / "onnx", "text-classification")
    assert (output_dir / "model.onnx").is_file() and (output_dir / "tokenizer.json").is_file()

    ort_model = ORTModelForSequenceClassification.from_pretrained(output_dir)
    model = SoraForSequenceClassification.from_pretrained(classifier_folder).eval()
    batch = padded_batch(classifier_folder)
    ort_outputs = ort_model(**batch)
    with torch.no_grad():
        expected = model(**batch).logits

    assert isinstance(ort_outputs, SequenceClassifierOutput)
    assert expected.std() > 1e-3  # the comparison is not between near-constant logits
    torch.testing.assert_close(ort_outputs.logits, expected, atol=1e-4, rtol=0)


def test_token_classification_from_a_model_matches_on_real_tokens(classifier_folder, tmp_path):
    model = SoraForTokenClassification.from_pretrained(classifier_folder).eval()
    output_dir = export_onnx(model, tmp_path / "onnx", "token-classification")

    ort_model = ORTModelForTokenClassification.from_pretrained(output_dir)
    batch = padded_batch(classifier_folder)
    with torch.no_grad():
        expected = model(**batch).logits
    real = batch[
        "attention_mask"
    ].bool()  # padding rows are meaningless (and differ: see FullMaskDummyInputsMixin)
    torch.testing.assert_close(ort_model(**batch).logits[real], expected[real], atol=1e-4, rtol=0)


def test_seq2seq_with_past_matches_pytorch_logits_and_greedy_tokens(seq2seq_folder, tmp_path):
    output_dir = export_onnx(seq2seq_folder, tmp_path / "onnx", "text2text-generation-with-past")
    assert {"encoder_model.onnx", "decoder_model_merged.onnx"} <= {path.name for path in output_dir.iterdir()}

    ort_model = ORTModelForSeq2SeqLM.from_pretrained(output_dir)
    model = SoraForConditionalGeneration.from_pretrained(seq2seq_folder).eval()
    batch = padded_batch(seq2seq_folder)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    decoder_input_ids = torch.tensor([[2, 5, 9, 14]] * len(BATCH))

    ort_outputs = ort_model(**inputs, decoder_input_ids=decoder_input_ids)
    with torch.no_grad():
        expected = model(**inputs, decoder_input_ids=decoder_input_ids).logits
    assert isinstance(ort_outputs, Seq2SeqLMOutput)
    torch.testing.assert_close(ort_outputs.logits, expected, atol=1e-4, rtol=0)

    assert ort_model.can_use_cache
    settings = {"max_new_tokens": 12, "min_new_tokens": 12, "do_sample": False, "num_beams": 1}
    ort_tokens = ort_model.generate(**inputs, **settings)
    with torch.no_grad():
        tokens = model.generate(**inputs, **settings)
    assert len(set(tokens[:, 1:].flatten().tolist())) > 1  # not one token repeated
    assert torch.equal(ort_tokens, tokens)


def test_cli_exports_with_sora_registered(classifier_folder, tmp_path):
    main(["--model", classifier_folder, "--task", "text-classification", str(tmp_path / "cli")])
    assert (tmp_path / "cli" / "model.onnx").is_file()


def test_bad_tasks_raise_value_error(classifier_folder, seq2seq_folder, tmp_path):
    with pytest.raises(ValueError, match="Unsupported ONNX export task 'image-classification'"):
        export_onnx(classifier_folder, tmp_path / "a", "image-classification")
    with pytest.raises(ValueError, match="needs an encoder-decoder Sora"):
        export_onnx(classifier_folder, tmp_path / "b", "text2text-generation-with-past")
    with pytest.raises(ValueError, match="this checkpoint is an encoder-decoder"):
        export_onnx(seq2seq_folder, tmp_path / "c", "feature-extraction")
    with pytest.raises(ValueError, match="no config.json"):
        export_onnx(tmp_path, tmp_path / "d", "text-classification")
