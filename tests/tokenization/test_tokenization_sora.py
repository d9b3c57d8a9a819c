"""Tests for `SoraTokenizer`, `train_sora_tokenizer` and `sora-hf train-tokenizer`.

Our behaviour tests come first; transformers' own `TokenizerTesterMixin` and `TokenizersBackendTesterMixin`
(from the sdist of the installed version, see `upstream.py`) run at the end against a tokenizer trained on
`fixtures/sample_text.txt`.
"""

import logging
import shutil
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import datasets
import pytest
import torch
from conftest import FIXTURES_DIR, TESTS_DIR
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM, pipeline
from transformers.utils import logging as transformers_logging
from upstream import upstream_module

import sora_hf
from sora_hf.cli import main as cli_main
from sora_hf.tokenization_sora import SPECIAL_TOKENS, SoraTokenizer, train_sora_tokenizer

FIXTURE = FIXTURES_DIR / "sample_text.txt"
FIXTURE_LINES = FIXTURE.read_text(encoding="utf-8").splitlines()

HARD_TEXTS = [
    "Hello world!",
    " leading space",
    "trailing space ",
    "   three leading, two trailing  ",
    "multiple    inner     spaces",
    "tabs\tand\nnewlines\r\nand a lone \r return\n\n",
    "emoji 😊 🤗 👩‍👩‍👧 🇯🇵 ❤️ done",
    "生活的真谛是 東京 한국어 日本語のテキスト",
    "accents: café naïve façade résumé Zoë Ångström",
    "combining e\u0301 and a\u0308, zero\u200bwidth, non\u00a0breaking",
    "Москва, Αθήνα, العربية, עברית, हिन्दी, ปี",
    "math ∑ ∫ ≠ ≤ and symbols © ® ™ § ¶ …",
    "\x00 control \x1f chars \x7f",
    "",
    " ",
    "\n",
]


@pytest.fixture(scope="module")
def tokenizer() -> SoraTokenizer:
    return train_sora_tokenizer([FIXTURE], vocab_size=1000, min_frequency=1)


@pytest.fixture(scope="module")
def saved_dir(tokenizer, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sora_tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Encoding behaviour
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_round_trip_is_exact_without_unknown_tokens(tokenizer, text):
    for tok in (tokenizer, SoraTokenizer()):
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_special_token_strings_in_text_round_trip_when_split(tokenizer):
    text = "literal <s> and </s> and <mask> in user text"
    ids = tokenizer(text, split_special_tokens=True)["input_ids"]
    assert set(ids[1:-1]).isdisjoint(tokenizer.all_special_ids)
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_special_tokens_have_fixed_ids(tokenizer):
    for tok in (tokenizer, SoraTokenizer()):
        assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == list(SPECIAL_TOKENS)
        assert (tok.pad_token_id, tok.bos_token_id, tok.cls_token_id) == (0, 1, 1)
        assert (tok.eos_token_id, tok.sep_token_id, tok.unk_token_id, tok.mask_token_id) == (2, 2, 3, 4)
        assert tok.model_max_length == 512
        assert tok.model_input_names == ["input_ids", "token_type_ids", "attention_mask"]


def test_untrained_tokenizer_is_specials_plus_bytes():
    tok = SoraTokenizer()
    assert len(tok) == 5 + 256
    assert tok.convert_ids_to_tokens(tok("ab")["input_ids"]) == ["<s>", "a", "b", "</s>"]


def test_vocabulary_converts_both_ways(tokenizer):
    for token, index in tokenizer.get_vocab().items():
        assert tokenizer.convert_tokens_to_ids(token) == index
        assert tokenizer.convert_ids_to_tokens(index) == token


def test_single_sequence_layout(tokenizer):
    encoding = tokenizer("The keeper lit the lamp.")
    body = tokenizer.encode("The keeper lit the lamp.", add_special_tokens=False)
    assert encoding["input_ids"] == [1, *body, 2]
    assert encoding["token_type_ids"] == [0] * (len(body) + 2)
    assert encoding["attention_mask"] == [1] * (len(body) + 2)
    assert tokenizer.num_special_tokens_to_add(pair=False) == 2


def test_pair_layout_and_token_type_ids(tokenizer):
    first = tokenizer.encode("Where is the light?", add_special_tokens=False)
    second = tokenizer.encode("The light is on the cape.", add_special_tokens=False)
    encoding = tokenizer("Where is the light?", "The light is on the cape.")
    assert encoding["input_ids"] == [1, *first, 2, *second, 2]
    assert encoding["token_type_ids"] == [0] * (len(first) + 2) + [1] * (len(second) + 1)
    assert encoding.sequence_ids() == [None] + [0] * len(first) + [None] + [1] * len(second) + [None]
    assert tokenizer.num_special_tokens_to_add(pair=True) == 3


def test_pair_truncation_only_second_keeps_the_question(tokenizer):
    question, context = "Who kept the light?", " ".join(FIXTURE_LINES[:5])
    encoding = tokenizer(
        question, context, truncation="only_second", max_length=32, return_overflowing_tokens=True
    )
    first = tokenizer.encode(question, add_special_tokens=False)
    assert all(len(ids) <= 32 for ids in encoding["input_ids"])
    assert len(encoding["input_ids"]) > 1
    for ids in encoding["input_ids"]:
        assert ids[: len(first) + 2] == [1, *first, 2]


def test_text_target_gives_bart_style_labels(tokenizer):
    batch = tokenizer(["The sea was calm."], text_target=["La mer était calme."])
    labels = batch["labels"][0]
    assert labels[0] == tokenizer.bos_token_id and labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(labels, skip_special_tokens=True) == "La mer était calme."
    assert batch["input_ids"][0][0] == 1 and batch["input_ids"][0][-1] == 2


def test_padding_and_truncation_defaults(tokenizer):
    batch = tokenizer(["short", "a much longer line of text"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[0] == 2
    assert batch["input_ids"][0, -1].item() == tokenizer.pad_token_id
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()
    long_ids = tokenizer(" ".join(FIXTURE_LINES) * 3, truncation=True)["input_ids"]
    assert len(long_ids) == 512 and long_ids[-1] == tokenizer.sep_token_id


def test_offsets_point_at_the_original_characters(tokenizer):
    text = "Hello, said the  postman on Tuesdays."
    encoding = tokenizer(text, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    assert encoding["offset_mapping"][0] == (0, 0) and encoding["offset_mapping"][-1] == (0, 0)
    for token, (start, end) in zip(tokens[1:-1], encoding["offset_mapping"][1:-1]):
        # Offsets leave out the leading space that the byte-level symbol Ġ stands for.
        assert text[start:end] == tokenizer.convert_tokens_to_string([token]).lstrip(" ")


def test_offsets_cover_multibyte_characters(tokenizer):
    text = "café 東京 😊"
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    covered = {index for start, end in encoding["offset_mapping"] for index in range(start, end)}
    assert covered == {index for index, char in enumerate(text) if char != " "}
    assert all(0 <= start <= end <= len(text) for start, end in encoding["offset_mapping"])


def test_split_into_words_with_prefix_space_matches_running_text(saved_dir):
    tok = SoraTokenizer.from_pretrained(saved_dir, add_prefix_space=True)
    words = ["Ilse", "lit", "the", "lighthouse", "lamp"]
    encoding = tok(words, is_split_into_words=True)
    assert encoding["input_ids"] == tok(" " + " ".join(words))["input_ids"]
    word_ids = encoding.word_ids()
    assert word_ids[0] is None and word_ids[-1] is None
    assert sorted(set(word_ids[1:-1])) == list(range(len(words)))
    assert word_ids[1:-1] == sorted(word_ids[1:-1])
    for index, word in enumerate(words):
        span = encoding.word_to_tokens(index)
        assert tok.decode(encoding["input_ids"][span.start : span.end]) == " " + word


def test_split_into_words_without_prefix_space_warns_but_aligns(tokenizer, caplog):
    words = ["Hello", "world"]
    transformers_logging.warning_once.cache_clear()  # another test may already have triggered the warning
    with caplog.at_level(logging.WARNING, logger="sora_hf.tokenization_sora"):
        encoding = tokenizer([words, ["again"]], is_split_into_words=True)
    assert "add_prefix_space=True" in caplog.text
    assert encoding.word_ids(0)[0] is None and encoding.word_ids(0)[-1] is None
    assert sorted(set(encoding.word_ids(0)[1:-1])) == [0, 1]


def test_mask_absorbs_the_space_on_its_left(tokenizer):
    assert tokenizer.added_tokens_decoder[4].lstrip is True
    with_space = tokenizer("the lamp <mask>.")["input_ids"]
    without_space = tokenizer("the lamp<mask>.")["input_ids"]
    assert with_space == without_space
    assert with_space.count(tokenizer.mask_token_id) == 1


def _tiny_masked_lm(kind: str, vocab_size: int) -> torch.nn.Module:
    sizes = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37}
    if kind == "bert":
        return BertForMaskedLM(BertConfig(vocab_size=vocab_size, max_position_embeddings=64, **sizes))
    return AutoModelForMaskedLM.from_config(sora_hf.SoraConfig(vocab_size=vocab_size, **sizes))


@pytest.mark.parametrize("kind", ["bert", "sora"])
def test_fill_mask_pipeline_fills_a_whole_word(tokenizer, kind):
    torch.manual_seed(0)
    fill_mask = pipeline("fill-mask", model=_tiny_masked_lm(kind, len(tokenizer)).eval(), tokenizer=tokenizer)
    predictions = fill_mask("The keeper lit the <mask>.", top_k=3)
    assert len(predictions) == 3
    for prediction in predictions:
        # The mask absorbed the space on its left: the filled sentence has one only if the predicted token does.
        assert prediction["sequence"] == f"The keeper lit the{prediction['token_str']}."
        assert prediction["token_str"] == tokenizer.decode([prediction["token"]])
    (light,) = fill_mask("The keeper lit the <mask>.", targets=["Ġlight"])
    assert light["token_str"] == " light"
    assert light["sequence"] == "The keeper lit the light."


# ---------------------------------------------------------------------------------------------------------------
# Saving, loading, registration
# ---------------------------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tokenizer, saved_dir):
    files = {path.name for path in saved_dir.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json"} <= files
    reloaded = SoraTokenizer.from_pretrained(saved_dir)
    assert reloaded.get_vocab() == tokenizer.get_vocab()
    assert reloaded.special_tokens_map == tokenizer.special_tokens_map
    assert reloaded.added_tokens_decoder[4].lstrip is True
    assert reloaded.model_max_length == 512
    for text in HARD_TEXTS + ["pair <mask> check"]:
        assert reloaded(text, "second part")["input_ids"] == tokenizer(text, "second part")["input_ids"]


def test_auto_tokenizer_finds_sora_tokenizer(saved_dir):
    assert sora_hf.SoraTokenizer is SoraTokenizer
    assert '"tokenizer_class": "SoraTokenizer"' in (saved_dir / "tokenizer_config.json").read_text()
    loaded = AutoTokenizer.from_pretrained(saved_dir)
    assert type(loaded) is SoraTokenizer
    assert loaded("A", "B")["token_type_ids"] == [0, 0, 0, 1, 1]


def test_auto_tokenizer_in_a_model_folder(tokenizer, tmp_path):
    sora_hf.SoraConfig(vocab_size=len(tokenizer)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert type(AutoTokenizer.from_pretrained(tmp_path)) is SoraTokenizer


def test_custom_model_max_length_is_saved(tmp_path):
    tok = train_sora_tokenizer(FIXTURE_LINES, vocab_size=300, model_max_length=128)
    tok.save_pretrained(tmp_path)
    assert SoraTokenizer.from_pretrained(tmp_path).model_max_length == 128


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def _check_trained(tok: SoraTokenizer, vocab_size: int) -> None:
    assert isinstance(tok, SoraTokenizer)
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == list(SPECIAL_TOKENS)
    assert 5 + 256 < len(tok) <= vocab_size
    assert tok.tokenize(" the light keeper") == ["Ġthe", "Ġlight", "Ġkeeper"]


def test_training_from_each_input_kind_gives_the_same_vocabulary(tmp_path):
    from_files = train_sora_tokenizer([str(FIXTURE)], vocab_size=600)
    _check_trained(from_files, 600)
    from_path = train_sora_tokenizer(FIXTURE, vocab_size=600)
    from_generator = train_sora_tokenizer((line for line in FIXTURE_LINES), vocab_size=600)
    dataset = datasets.Dataset.from_dict({"id": list(range(len(FIXTURE_LINES))), "body": FIXTURE_LINES})
    from_dataset = train_sora_tokenizer(dataset, vocab_size=600, text_column="body")
    from_iterable_dataset = train_sora_tokenizer(
        dataset.to_iterable_dataset(), vocab_size=600, text_column="body"
    )
    for other in (from_path, from_generator, from_dataset, from_iterable_dataset):
        assert other.get_vocab() == from_files.get_vocab()

    from_files.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.get_vocab() == from_files.get_vocab()


def test_min_frequency_limits_merges():
    rare = train_sora_tokenizer(FIXTURE_LINES, vocab_size=2000, min_frequency=1)
    frequent = train_sora_tokenizer(FIXTURE_LINES, vocab_size=2000, min_frequency=5)
    assert len(frequent) < len(rare) <= 2000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vocab_size": 261}, "vocab_size must be an int above 261"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"vocab_size": "8000"}, "vocab_size"),
        ({"vocab_size": 500, "min_frequency": 0}, "min_frequency"),
        ({"vocab_size": 500, "model_max_length": 1}, "model_max_length"),
    ],
)
def test_bad_training_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_sora_tokenizer(FIXTURE_LINES, **kwargs)


def test_bad_training_inputs_raise(tmp_path):
    dataset = datasets.Dataset.from_dict({"text": ["a b c"] * 3, "label": [0, 1, 2]})
    with pytest.raises(ValueError, match="no column 'body'"):
        train_sora_tokenizer(dataset, vocab_size=300, text_column="body")
    with pytest.raises(ValueError, match="not strings"):
        train_sora_tokenizer(dataset, vocab_size=300, text_column="label")
    with pytest.raises(ValueError, match="DatasetDict"):
        train_sora_tokenizer(datasets.DatasetDict({"train": dataset}), vocab_size=300)
    with pytest.raises(ValueError, match="do not exist"):
        train_sora_tokenizer([tmp_path / "missing.txt"], vocab_size=300)
    with pytest.raises(ValueError, match="do not exist"):
        train_sora_tokenizer([str(FIXTURE), str(tmp_path / "missing.txt")], vocab_size=300)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt is not UTF-8"):
        train_sora_tokenizer([latin1], vocab_size=300)
    with pytest.raises(ValueError, match="single string"):
        train_sora_tokenizer("just one text", vocab_size=300)
    with pytest.raises(ValueError, match="expected texts"):
        train_sora_tokenizer(["fine", 3], vocab_size=300)
    with pytest.raises(ValueError, match="no non-empty text"):
        train_sora_tokenizer(["", None, ""], vocab_size=300)
    with pytest.raises(ValueError, match="cannot read"):
        train_sora_tokenizer(42, vocab_size=300)


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def test_cli_trains_from_files(tmp_path, capsys):
    second = tmp_path / "more.txt"
    second.write_text("The lamp room is at the top of the tower.\n" * 3, encoding="utf-8")
    output = tmp_path / "tok"
    argv = [
        "train-tokenizer",
        "--files",
        str(FIXTURE),
        str(second),
        "--vocab-size",
        "400",
        "--output-dir",
        str(output),
    ]
    assert cli_main(argv) == 0
    assert "SoraTokenizer" in capsys.readouterr().out
    loaded = AutoTokenizer.from_pretrained(output)
    assert isinstance(loaded, SoraTokenizer)
    expected = train_sora_tokenizer([FIXTURE, second], vocab_size=400)
    assert loaded.get_vocab() == expected.get_vocab()


def test_cli_trains_from_a_saved_dataset(tmp_path):
    dataset = datasets.Dataset.from_dict({"sentence": FIXTURE_LINES})
    datasets.DatasetDict({"train": dataset, "test": dataset.select(range(3))}).save_to_disk(tmp_path / "data")
    output = tmp_path / "tok"
    argv = [
        "train-tokenizer",
        "--dataset-dir",
        str(tmp_path / "data"),
        "--text-column",
        "sentence",
        "--vocab-size",
        "500",
        "--model-max-length",
        "256",
        "--output-dir",
        str(output),
    ]
    assert cli_main(argv) == 0
    loaded = SoraTokenizer.from_pretrained(output)
    assert loaded.model_max_length == 256
    assert loaded.get_vocab() == train_sora_tokenizer(FIXTURE_LINES, vocab_size=500).get_vocab()

    with pytest.raises(ValueError, match="set --split"):
        cli_main(argv[:-2] + ["--split", "validation", "--output-dir", str(output)])
    with pytest.raises(ValueError, match="not a folder"):
        cli_main(["train-tokenizer", "--dataset-dir", str(tmp_path / "nope"), "--output-dir", str(output)])
    with pytest.raises(ValueError, match="vocab_size"):
        cli_main(
            ["train-tokenizer", "--files", str(FIXTURE), "--vocab-size", "100", "--output-dir", str(output)]
        )


def test_cli_requires_exactly_one_source(tmp_path):
    with pytest.raises(SystemExit):
        cli_main(["train-tokenizer", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        cli_main(
            ["train-tokenizer", "--files", str(FIXTURE), "--dataset-dir", str(tmp_path), "--output-dir", "x"]
        )


# ---------------------------------------------------------------------------------------------------------------
# transformers' own tokenizer test suites
# ---------------------------------------------------------------------------------------------------------------

_common = upstream_module("test_tokenization_common")
_backend = upstream_module("test_tokenizers_backend_mixin")


class _TrainedOnFixture:
    """Train a tokenizer on our fixture into a temp folder and point the upstream tester at it."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.trained_dir = tempfile.mkdtemp()
        train_sora_tokenizer([FIXTURE], vocab_size=1000, min_frequency=1).save_pretrained(cls.trained_dir)
        cls.from_pretrained_id = [cls.trained_dir]
        # The mixin reads `<tests dir>/fixtures/sample_text.txt`, which the sdist does not ship: use ours.
        with mock.patch.object(_common, "get_tests_dir", return_value=str(TESTS_DIR)):
            super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.trained_dir, ignore_errors=True)


class SoraTokenizationTest(_TrainedOnFixture, _common.TokenizerTesterMixin, unittest.TestCase):
    tokenizer_class = SoraTokenizer

    # Pinned output of the tokenizer trained on fixtures/sample_text.txt (training is deterministic).
    integration_expected_tokens = [
        "This", "Ġis", "Ġa", "Ġtes", "t", "ĠðŁĺĬ", "Ċ", "I", "Ġwas", "Ġb", "or", "n", "Ġin", "Ġ9200", "0", ",",
        "Ġand", "Ġthis", "Ġis", "Ġf", "al", "s", "Ã©", ".", "Ċ", "çĶ", "Łæ´»", "ç", "ļ", "Ħ", "ç", "ľ", "Ł",
        "è", "°", "Ľ", "æ", "ĺ", "¯", "Ċ", "H", "i", "Ġ", "Ġ", "Hello", "Ċ", "H", "i", "Ġ", "Ġ", "Ġ", "Hello",
        "Ċ", "Ċ", "Ġ", "Ċ", "Ġ", "Ġ", "Ċ", "Ġ", "Hello", "Ċ", "<s>", "Ċ", "hi", "<s>", "t", "he", "re", "Ċ",
        "The", "Ġf", "o", "ll", "ow", "ing", "Ġst", "ring", "Ġshou", "ld", "Ġbe", "Ġpro", "p", "er", "ly", "Ġen",
        "c", "o", "d", "ed", ":", "Ġ", "Hello", ".", "Ċ", "But", "Ġi", "rd", "Ġand", "Ġ", "à", "¸", "Ľ", "à",
        "¸", "µ", "Ġ", "Ġ", "Ġi", "rd", "Ġ", "Ġ", "Ġ", "à", "¸", "Ķ", "Ċ", "He", "y", "Ġhow", "Ġare", "Ġ", "y",
        "ou", "Ġdo", "ing",
    ]  # fmt: skip
    integration_expected_token_ids = [
        494, 307, 263, 764, 88, 957, 203, 45, 341, 285, 274, 82, 306, 750, 20, 16, 271, 402, 307, 276, 639, 87,
        446, 18, 203, 740, 762, 168, 253, 231, 168, 255, 258, 169, 113, 254, 167, 251, 112, 203, 44, 77, 225, 225,
        575, 203, 44, 77, 225, 225, 225, 575, 203, 203, 225, 203, 225, 225, 203, 225, 575, 203, 1, 203, 287, 1,
        88, 262, 268, 203, 308, 276, 83, 292, 366, 351, 324, 705, 779, 390, 359, 413, 84, 269, 685, 742, 71, 83,
        72, 280, 30, 225, 575, 18, 203, 992, 272, 703, 271, 225, 161, 121, 254, 161, 121, 118, 225, 225, 272, 703,
        225, 225, 225, 161, 121, 247, 203, 346, 93, 587, 374, 225, 93, 279, 467, 351,
    ]  # fmt: skip
    # Byte-level BPE gives the input back exactly.
    integration_expected_decoded_text = _common.TokenizerTesterMixin.integration_test_input_string


class SoraTokenizersBackendTest(_TrainedOnFixture, _backend.TokenizersBackendTesterMixin, unittest.TestCase):
    tokenizer_class = SoraTokenizer


def test_training_on_a_list_with_very_long_texts():
    """A long text is not mistaken for a file path (Path.is_file() raises ENAMETOOLONG on it)."""
    long_text = "word " * 5000
    tokenizer = train_sora_tokenizer([long_text, "another short text"] * 5, vocab_size=300)
    assert (
        tokenizer.decode(tokenizer("another short text")["input_ids"], skip_special_tokens=True)
        == "another short text"
    )
