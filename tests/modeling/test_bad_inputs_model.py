"""Bad input to the models, configs, pipelines and checkpoints: each gets a `ValueError` naming the input, the value
and the fix (issue 23). Every test feeds exactly the input the issue lists."""

import shutil

import pytest
import torch
from conftest import BATCH, TINY_SORA
from hub_server import WRITE_TOKEN, clients_pointed_at
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline

from sora_hf import (
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
    SoraVisionConfig,
)
from sora_hf.errors import ConfigFieldTypeError, CorruptCheckpointError


def tiny_config(**overrides) -> SoraConfig:
    return SoraConfig(**{**TINY_SORA, **overrides})


@pytest.fixture(scope="module")
def folders(tiny_tokenizer, tmp_path_factory):
    """Saved tiny checkpoints (with the tokenizer) of the heads the pipelines load, by head name."""
    root = tmp_path_factory.mktemp("checkpoints")
    heads = {
        "masked_lm": (SoraForMaskedLM, {}),
        "classifier": (SoraForSequenceClassification, {}),
        "tagger": (SoraForTokenClassification, {}),
        "qa": (SoraForQuestionAnswering, {}),
        "seq2seq": (SoraForConditionalGeneration, {"is_encoder_decoder": True}),
    }
    folders = {}
    for name, (model_class, extra) in heads.items():
        torch.manual_seed(0)
        model_class(tiny_config(vocab_size=len(tiny_tokenizer), **extra)).save_pretrained(root / name)
        tiny_tokenizer.save_pretrained(root / name)
        folders[name] = root / name
    return folders


def ids(batch: int = 1, length: int = 4) -> torch.Tensor:
    return torch.arange(5, 5 + batch * length).view(batch, length) % 100 + 5


# ---- attention mask, empty batches, segment ids, positions -----------------------------------------------------


@pytest.mark.parametrize("mask_shape", [(2, 4), (1, 3), (1, 5)], ids=["batch-2-for-1", "shorter", "longer"])
def test_attention_mask_that_does_not_match_the_ids_names_both_shapes(mask_shape):
    model = SoraForSequenceClassification(tiny_config()).eval()
    pattern = (
        rf"attention_mask has shape \({mask_shape[0]}, {mask_shape[1]}\) but input_ids has shape \(1, 4\)"
    )
    with pytest.raises(ValueError, match=pattern):
        model(ids(), attention_mask=torch.ones(mask_shape, dtype=torch.long))


def test_decoder_mask_and_encoder_mask_that_do_not_match_are_refused():
    model = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True)).eval()
    with pytest.raises(ValueError, match=r"decoder_attention_mask has shape \(2, 3\) but the decoder inputs"):
        model(ids(), decoder_input_ids=ids(1, 3), decoder_attention_mask=torch.ones(2, 3, dtype=torch.long))
    encoder_outputs = model.get_encoder()(ids())
    with pytest.raises(
        ValueError, match=r"attention_mask has shape \(1, 6\) but the encoder's output covers"
    ):
        model(encoder_outputs=encoder_outputs, attention_mask=torch.ones(1, 6), decoder_input_ids=ids(1, 2))
    with pytest.raises(ValueError, match="hold 2 sequences but the encoder's input holds 1"):
        model(ids(), labels=ids(2, 3))


@pytest.mark.parametrize("shape", [(0, 4), (2, 0)], ids=["batch-0", "length-0"])
@pytest.mark.parametrize("model_class", [SoraModel, SoraForSequenceClassification, SoraForMaskedLM])
def test_empty_batch_or_empty_sequence_says_so(model_class, shape):
    model = model_class(tiny_config()).eval()
    with pytest.raises(
        ValueError, match=rf"input_ids has shape \({shape[0]}, {shape[1]}\): the model needs at least"
    ):
        model(torch.zeros(shape, dtype=torch.long))


def test_one_dimensional_ids_say_how_to_batch():
    model = SoraModel(tiny_config()).eval()
    with pytest.raises(
        ValueError, match=r"input_ids must have shape \(batch_size, sequence_length\), got \(4,\)"
    ):
        model(ids()[0])


def test_inputs_embeds_of_the_wrong_width_are_refused():
    model = SoraModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"inputs_embeds must have shape .*hidden_size=32.*got \(1, 4, 16\)"):
        model(inputs_embeds=torch.zeros(1, 4, 16))


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        (
            "token_type_ids",
            2,
            r"token_type_ids contains 2, outside the allowed range \[0, 2\) \(config.type_vocab_size=2\)",
        ),
        ("token_type_ids", -1, r"token_type_ids contains -1, .*Give token_type_ids in \[0, 1\]"),
        (
            "position_ids",
            64,
            r"position_ids contains 64, outside the allowed range \[0, 64\) \(config.max_position_embeddings=64\)",
        ),
    ],
)
def test_segment_and_position_ids_out_of_range_name_the_field_value_and_range(field, value, pattern):
    model = SoraForSequenceClassification(tiny_config()).eval()
    values = torch.zeros(1, 4, dtype=torch.long)
    values[0, 2] = value
    with pytest.raises(ValueError, match=pattern):
        model(ids(), **{field: values})


def test_segment_ids_of_another_shape_name_both_shapes():
    model = SoraModel(tiny_config()).eval()
    with pytest.raises(
        ValueError, match=r"token_type_ids has shape \(1, 3\) but input_ids has shape \(1, 4\)"
    ):
        model(ids(), token_type_ids=torch.zeros(1, 3, dtype=torch.long))
    # one row for the whole batch, and 1-D positions, are the shapes BERT accepts too
    model(ids(2, 4), position_ids=torch.arange(4)[None], token_type_ids=torch.zeros(4, dtype=torch.long))


# ---- labels -----------------------------------------------------------------------------------------------------


def test_class_label_out_of_range_names_num_labels():
    model = SoraForSequenceClassification(tiny_config()).eval()
    with pytest.raises(
        ValueError, match=r"labels contains 3, .*\(config.num_labels=3\).*num_labels=<number of"
    ):
        model(ids(2, 4), labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"labels contains -1"):
        model(ids(2, 4), labels=torch.tensor([-1, 0]))


def test_ignore_index_still_ignores_examples_and_tokens():
    model = SoraForSequenceClassification(tiny_config()).eval()
    both = model(ids(2, 4), labels=torch.tensor([-100, 2])).loss
    second = model(ids(2, 4)[1:], labels=torch.tensor([2])).loss
    torch.testing.assert_close(both, second)
    tagger = SoraForTokenClassification(tiny_config()).eval()
    tags = torch.tensor([[0, -100, 2, -100]])
    loss = tagger(ids(), labels=tags).loss
    logits = tagger(ids()).logits[0, [0, 2]]
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])))


@pytest.mark.parametrize(
    "model_class, labels, pattern",
    [
        (SoraForTokenClassification, [[0, 1, 7, -100]], r"labels contains 7, .*\(config.num_labels=3\)"),
        (SoraForMaskedLM, [[-100, 120, -100, -100]], r"labels contains 120, .*\(config.vocab_size=120\)"),
        (SoraForPreTraining, [[-100, -100, -100, 500]], r"labels contains 500, .*\(config.vocab_size=120\)"),
        (
            SoraForTokenClassification,
            [[0, 1, 2]],
            r"labels has shape \(1, 3\) but the model makes predictions",
        ),
    ],
)
def test_token_labels_out_of_range_or_misshapen_name_the_limit(model_class, labels, pattern):
    model = model_class(tiny_config()).eval()
    with pytest.raises(ValueError, match=pattern):
        model(ids(), labels=torch.tensor(labels))


def test_seq2seq_and_pretraining_labels_out_of_range_are_refused():
    seq2seq = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True)).eval()
    with pytest.raises(ValueError, match=r"labels contains 130, .*\(config.vocab_size=120\)"):
        seq2seq(ids(), labels=torch.tensor([[5, 130, -100]]))
    pretraining = SoraForPreTraining(tiny_config(is_encoder_decoder=True)).eval()
    with pytest.raises(ValueError, match=r"next_sentence_label contains 2, .*\(2 classes\)"):
        pretraining(ids(), next_sentence_label=torch.tensor([2]))
    with pytest.raises(ValueError, match=r"decoder_labels contains 121"):
        pretraining(ids(), denoising_input_ids=ids(), decoder_labels=torch.tensor([[5, 121]]))


# ---- configuration: every way a SoraConfig is made or changed ----------------------------------------------------


def test_num_labels_zero_is_refused_at_every_entry(tmp_path):
    with pytest.raises(ValueError, match=r"SoraConfig.num_labels must be a positive integer .* got 0"):
        tiny_config(num_labels=0)
    config = tiny_config()
    with pytest.raises(ValueError, match="num_labels must be a positive integer"):
        config.num_labels = 0
    assert config.num_labels == 3  # the assignment is undone
    config.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="num_labels must be a positive integer"):
        SoraConfig.from_pretrained(tmp_path, num_labels=0)
    config.id2label.clear()  # in place: no assignment to check, so model construction catches it
    with pytest.raises(ValueError, match="num_labels must be a positive integer"):
        SoraForSequenceClassification(config)


def test_from_pretrained_overrides_are_checked(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match=r"hidden_size \(32\) must be divisible by num_attention_heads \(5\)"
    ):
        SoraConfig.from_pretrained(tmp_path, num_attention_heads=5)
    with pytest.raises(ValueError, match="num_attention_heads"):
        AutoConfig.from_pretrained(tmp_path, num_attention_heads=5)
    with pytest.raises(ValueError, match="num_attention_heads"):
        SoraForSequenceClassification.from_pretrained(tmp_path, num_attention_heads=5)
    with pytest.raises(ValueError, match="vocab_size must be a positive integer, got -1"):
        SoraConfig.from_dict(tiny_config().to_dict(), vocab_size=-1)
    # overrides that only fit together are applied together
    config = SoraConfig.from_pretrained(
        tmp_path, hidden_size=48, num_attention_heads=6, decoder_attention_heads=6, d_model=48
    )
    assert (config.hidden_size, config.num_attention_heads) == (48, 6)
    config, unused = SoraConfig.from_pretrained(
        tmp_path, num_hidden_layers=3, foo="bar", return_unused_kwargs=True
    )
    assert config.num_hidden_layers == 3 and unused == {"foo": "bar"}


def test_attribute_assignment_is_checked_and_undone():
    config = tiny_config()
    with pytest.raises(ValueError, match=r"divisible by num_attention_heads \(5\).*Undone.*config.update"):
        config.num_attention_heads = 5
    assert config.num_attention_heads == 4
    with pytest.raises(ValueError, match="hidden_dropout_prob must be a probability"):
        config.hidden_dropout_prob = 1.5
    with pytest.raises(ValueError, match=r"hidden_size \(30\) must be divisible"):
        config.d_model = 30  # an alias (attribute_map) is the same field
    with pytest.raises(ValueError, match="pad_token_id=500 is outside the vocabulary"):
        config.pad_token_id = 500
    # an int where a probability is expected is fine, as in transformers' configs
    config.hidden_dropout_prob = 0
    config.update({"hidden_size": 48, "num_attention_heads": 6, "decoder_attention_heads": 6})
    assert (config.hidden_size, config.num_attention_heads) == (48, 6)
    with pytest.raises(ValueError, match="divisible"):
        config.update({"hidden_size": 44, "intermediate_size": 99})
    assert (config.hidden_size, config.intermediate_size) == (48, 64)  # nothing of a refused update stays
    assert "_checks_paused" not in config.to_dict()


def test_sub_config_assignment_is_checked():
    config = tiny_config(vision_config=SoraVisionConfig(image_size=32, patch_size=8, hidden_size=32))
    with pytest.raises(ValueError, match=r"image_size \(32\) must be a multiple of patch_size \(7\)"):
        config.vision_config.patch_size = 7
    assert config.vision_config.patch_size == 8


@pytest.mark.parametrize(
    "field, value", [("hidden_size", "big"), ("num_hidden_layers", 2.0), ("vocab_size", None)]
)
def test_wrong_type_is_a_value_error_that_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"SoraConfig.{field}=.* has the wrong type") as raised:
        tiny_config(**{field: value})
    # still the error transformers' strict configs raise, for code that catches that one
    assert isinstance(raised.value, (ConfigFieldTypeError, StrictDataclassFieldValidationError))
    config = tiny_config()
    with pytest.raises(ConfigFieldTypeError, match=field):
        setattr(config, field, value)


def test_transformers_own_attributes_are_set_freely():
    config = tiny_config(is_encoder_decoder=True)
    # building it makes a generation config from a copy of the config that transformers reshapes field by field
    model = SoraForConditionalGeneration(config)
    model.config.dtype = torch.bfloat16
    model.config.architectures = ["Anything"]
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"


# ---- generation past the position limit ---------------------------------------------------------------------------


def test_max_new_tokens_past_the_position_limit_names_it_the_prompt_and_the_limit():
    model = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True, eos_token_id=None)).eval()
    pattern = (
        r"max_new_tokens=80 after a decoder prompt of 1 token\(s\) needs 80 decoder positions, which exceeds the "
        r"model's position limit max_position_embeddings=64\. Lower max_new_tokens to at most 64"
    )
    with pytest.raises(ValueError, match=pattern):
        model.generate(ids(), max_new_tokens=80)
    with pytest.raises(ValueError, match=r"max_new_tokens=63 after a decoder prompt of 3 token\(s\)"):
        model.generate(ids(), decoder_input_ids=torch.tensor([[2, 5, 6]]), max_new_tokens=63)
    with pytest.raises(ValueError, match=r"max_length=70 .*Lower max_length to at most 65"):
        model.generate(ids(), max_length=70)
    # exactly the limit still runs to the end
    assert model.generate(ids(), max_new_tokens=64, min_new_tokens=64).shape == (1, 65)


# ---- pipelines ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task, head",
    [
        ("fill-mask", "masked_lm"),
        ("text-classification", "classifier"),
        ("feature-extraction", "masked_lm"),
        ("token-classification", "tagger"),
        ("question-answering", "qa"),
        ("text2text-generation", "seq2seq"),
        ("summarization", "seq2seq"),
        ("translation", "seq2seq"),
    ],
)
def test_empty_list_to_a_pipeline_is_a_value_error(task, head, folders):
    pipe = pipeline(task, model=str(folders[head]))
    # token-classification's message is transformers' own ("At least one input is required.")
    with pytest.raises(ValueError, match="empty list of inputs|At least one input"):
        pipe([])


def test_question_answering_with_an_empty_list_of_questions(folders):
    pipe = pipeline("question-answering", model=str(folders["qa"]))
    with pytest.raises(ValueError, match="empty list of inputs"):
        pipe(question=[], context="the cat sat on the mat")


def test_fill_mask_top_k_above_the_vocabulary_is_refused(folders, tiny_tokenizer):
    pipe = pipeline("fill-mask", model=str(folders["masked_lm"]))
    vocab = len(tiny_tokenizer)
    with pytest.raises(
        ValueError, match=rf"top_k={vocab + 1} is more than the model's vocabulary of {vocab}"
    ):
        pipe("the cat <mask> on the mat", top_k=vocab + 1)
    with pytest.raises(ValueError, match="top_k` must be an int >= 1"):
        pipe("the cat <mask> on the mat", top_k=0)
    assert len(pipe("the cat <mask> on the mat", top_k=vocab)) == vocab
    # with targets, transformers caps top_k at their number: unchanged
    assert len(pipe("the cat <mask> on the mat", targets=["sat", "ran"], top_k=vocab + 1)) == 2


def test_seq2seq_pipeline_past_the_position_limit(folders):
    pipe = pipeline("summarization", model=str(folders["seq2seq"]))
    with pytest.raises(ValueError, match="max_new_tokens=500 .*max_position_embeddings=64"):
        pipe(BATCH[0], max_new_tokens=500)


# ---- truncated checkpoints ---------------------------------------------------------------------------------------


def truncated_copy(folder, destination, keep: float):
    shutil.copytree(folder, destination)
    weights = destination / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: int(len(data) * keep)])
    return weights


@pytest.mark.parametrize("keep", [0.5, 0.999, 0.0001], ids=["half", "last-bytes-lost", "header-cut"])
def test_truncated_safetensors_names_the_file(folders, tmp_path, keep):
    weights = truncated_copy(folders["classifier"], tmp_path / "broken", keep)
    with pytest.raises(
        CorruptCheckpointError, match=rf"{weights}.* is truncated or corrupt .*force_download=True"
    ):
        SoraForSequenceClassification.from_pretrained(tmp_path / "broken")
    with pytest.raises(CorruptCheckpointError, match="model.safetensors is truncated"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path / "broken")
    # the pipeline retries other classes, then reports every error: ours is among them
    with pytest.raises(ValueError, match="model.safetensors is truncated or corrupt"):
        pipeline("text-classification", model=str(tmp_path / "broken"))


def test_truncated_download_in_the_hub_cache_names_the_cached_file(folders, hub_server, tmp_path):
    repo = "sora-tester/truncated-weights"
    with clients_pointed_at(hub_server.endpoint, tmp_path / "hf_home"):
        SoraForSequenceClassification.from_pretrained(folders["classifier"]).push_to_hub(
            repo, token=WRITE_TOKEN
        )
        SoraForSequenceClassification.from_pretrained(repo)  # now in the cache
        [cached] = (tmp_path / "hf_home").rglob("model.safetensors")
        cached.resolve().write_bytes(cached.resolve().read_bytes()[:1000])
        with pytest.raises(CorruptCheckpointError, match="model.safetensors is truncated or corrupt"):
            SoraForSequenceClassification.from_pretrained(repo)
