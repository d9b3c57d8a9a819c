"""Tests for the pretraining data pipeline: sentence packing, MLM + NSP collation and BART denoising."""

import itertools
import statistics
import time

import datasets
import pytest
import torch
from conftest import FIXTURES_DIR

from sora_hf.tokenization_sora import train_sora_tokenizer
from sora_hf.training.collators import DataCollatorForDenoising, DataCollatorForSoraPretraining
from sora_hf.training.pretraining_data import pack_sentences, prepare_pretraining_dataset, split_sentences

FIXTURE = FIXTURES_DIR / "sample_text.txt"
PAD, CLS, SEP, UNK, MASK = range(5)
SPECIAL = {PAD, CLS, SEP, UNK, MASK}
MAX_LENGTH = 64

SUBJECTS = [
    "The keeper",
    "A fisherman",
    "Her grandson",
    "The old captain",
    "Every sailor",
    "The baker",
    "Ilse",
]
VERBS = ["watched", "painted", "remembered", "described", "carried", "counted", "repaired"]
OBJECTS = [
    "the northern lighthouse",
    "a wooden boat",
    "the stormy harbour",
    "seven silver lanterns",
    "the quiet village",
    "an unusual telescope",
    "the morning forecast",
]
ENDINGS = [
    "before sunrise.",
    "with great patience.",
    "after the long winter!",
    "near the rocks.",
    "while singing softly.",
    "for the whole evening?",
    "as the tide turned.",
]


def _documents() -> list[str]:
    """A few hundred generated sentences grouped into paragraph-sized documents, plus the fixture paragraphs."""
    sentences = [
        f"{subject} {verb} {obj} {ending}"
        for subject, verb, obj, ending in itertools.islice(
            itertools.product(SUBJECTS, VERBS, OBJECTS, ENDINGS), 0, None, 11
        )
    ]
    documents = [" ".join(sentences[start : start + 3 + start % 4]) for start in range(0, len(sentences), 5)]
    fixture = [
        " ".join(paragraph.split()) for paragraph in FIXTURE.read_text().split("\n\n") if paragraph.strip()
    ]
    return documents + fixture


@pytest.fixture(scope="module")
def tokenizer():
    # A generator, not a list: a list of strings is probed as file paths.
    texts = iter(_documents() + FIXTURE.read_text().splitlines())
    return train_sora_tokenizer(texts, vocab_size=700, min_frequency=1)


@pytest.fixture(scope="module")
def chunks(tokenizer):
    dataset = datasets.Dataset.from_dict({"text": _documents(), "source": ["fixture"] * len(_documents())})
    return prepare_pretraining_dataset(dataset, tokenizer, max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def examples(chunks):
    return chunks.to_list()


def _batches(collator, examples, repeats, batch_size=32):
    for _ in range(repeats):
        for start in range(0, len(examples), batch_size):
            yield examples[start : start + batch_size]


def _original_ids(batch):
    """The pair before masking: labels where a token was predicted, the input elsewhere."""
    return torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])


# ---- sentence splitting and packing ------------------------------------------------------------------------


def test_split_sentences_on_terminal_punctuation_before_a_capital():
    text = 'He left. "Why?" she asked! Then silence... and more. See e.g. the notes?\nNext line'
    assert split_sentences(text) == [
        "He left.",
        '"Why?" she asked!',
        "Then silence... and more.",
        "See e.g. the notes?",
        "Next line",
    ]
    assert split_sentences("Él vino. ¿Quién era? Nadie.") == ["Él vino.", "¿Quién era?", "Nadie."]
    assert split_sentences("   ") == []


def test_pack_sentences_fits_the_budget_and_cuts_long_sentences():
    sentences = [[5] * 4, [6] * 3, [7] * 12, [8] * 2]
    packed = pack_sentences(sentences, budget=8)
    assert all(sum(len(s) for s in chunk) <= 8 for chunk in packed)
    assert list(itertools.chain.from_iterable(itertools.chain.from_iterable(packed))) == [
        token for sentence in sentences for token in sentence
    ]
    assert packed[0] == [[5] * 4, [6] * 3]
    assert [7] * 8 in packed[1]  # the 12-token sentence is cut into pieces of at most 8
    # A lone last sentence borrows the previous chunk's last sentence so next-sentence prediction can split it.
    assert pack_sentences([[5], [6], [7], [8] * 3], budget=4) == [[[5], [6]], [[7], [8] * 3]]


def test_prepare_pretraining_dataset_packs_consecutive_sentences(tokenizer, chunks):
    assert chunks.column_names == ["sentences", "length"]
    assert all(1 <= len(row["sentences"]) for row in chunks)
    for row in chunks:
        tokens = sum(len(sentence) for sentence in row["sentences"])
        assert tokens <= MAX_LENGTH - 3
        assert row["length"] == tokens + 3
    multi = sum(len(row["sentences"]) >= 2 for row in chunks) / len(chunks)
    assert multi > 0.8, f"only {multi:.0%} of chunks have a sentence boundary for NSP"
    # No text is lost: the chunks of the documents, decoded back to back, are the documents.
    decoded = tokenizer.decode(
        [token for row in chunks for sentence in row["sentences"] for token in sentence]
    )
    assert decoded == "".join(_documents())


def test_prepare_pretraining_dataset_is_deterministic_and_maps_dataset_dicts(tokenizer, chunks):
    corpus = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": _documents()}),
            "validation": datasets.Dataset.from_dict({"text": _documents()[:3]}),
        }
    )
    again = prepare_pretraining_dataset(corpus, tokenizer, max_length=MAX_LENGTH)
    assert again["train"]["sentences"] == chunks["sentences"]
    assert len(again["validation"]) >= 3


def test_prepare_pretraining_dataset_rejects_bad_input(tokenizer):
    with pytest.raises(ValueError, match="no column 'text'"):
        prepare_pretraining_dataset(datasets.Dataset.from_dict({"body": ["A b."]}), tokenizer)
    with pytest.raises(ValueError, match="max_length"):
        prepare_pretraining_dataset(datasets.Dataset.from_dict({"text": ["A b."]}), tokenizer, max_length=3)
    with pytest.raises(ValueError, match="datasets.Dataset"):
        prepare_pretraining_dataset(["A b."], tokenizer)


# ---- masked language modelling ------------------------------------------------------------------------------


def test_masking_rate_and_80_10_10_split(tokenizer, examples):
    collator = DataCollatorForSoraPretraining(tokenizer, denoising=False, seed=0)
    eligible = predicted = as_mask = unchanged = random = 0
    for batch_examples in _batches(collator, examples, repeats=12):
        batch = collator(batch_examples)
        original = _original_ids(batch)
        is_special = torch.isin(original, torch.tensor(sorted(SPECIAL)))
        labelled = batch["labels"] != -100
        assert not (labelled & is_special).any(), "a special or pad token was chosen for prediction"
        assert torch.equal(batch["input_ids"][is_special], original[is_special]), (
            "special tokens were altered"
        )
        assert labelled.any(dim=1).all(), "a row has nothing to predict"
        eligible += int((~is_special).sum())
        predicted += int(labelled.sum())
        as_mask += int((batch["input_ids"][labelled] == MASK).sum())
        unchanged += int((batch["input_ids"][labelled] == original[labelled]).sum())
        replaced = labelled & (batch["input_ids"] != MASK) & (batch["input_ids"] != original)
        random += int(replaced.sum())
        assert (batch["input_ids"][replaced] >= 5).all(), "a random replacement drew a special token"
    assert predicted > 5000
    assert abs(predicted / eligible - 0.15) < 0.02
    assert abs(as_mask / predicted - 0.8) < 0.03
    assert abs(unchanged / predicted - 0.1) < 0.02
    assert abs(random / predicted - 0.1) < 0.02


def test_every_row_gets_a_prediction_even_when_short(tokenizer):
    collator = DataCollatorForSoraPretraining(tokenizer, mlm_probability=0.01, seed=0)
    batch = collator([{"sentences": [[100, 101]]}, {"sentences": [[102], [103]]}] * 8)
    assert ((batch["labels"] != -100).sum(dim=1) >= 1).all()


def _words(tokens):
    """Index groups of words: a "Ġ" token or the token after a special token starts a word."""
    words, current = [], []
    for index, token in enumerate(tokens):
        if token in ("<s>", "</s>", "<pad>"):
            if current:
                words.append(current)
            current = []
            continue
        if current and token.startswith("Ġ"):
            words.append(current)
            current = []
        current.append(index)
    if current:
        words.append(current)
    return words


def test_whole_word_masking_masks_all_tokens_of_a_word(tokenizer, examples):
    collator = DataCollatorForSoraPretraining(tokenizer, whole_word_masking=True, denoising=False, seed=1)
    eligible = predicted = multi_token_words_masked = 0
    for batch_examples in _batches(collator, examples, repeats=4):
        batch = collator(batch_examples)
        original = _original_ids(batch)
        labelled = batch["labels"] != -100
        for row in range(len(original)):
            tokens = tokenizer.convert_ids_to_tokens(original[row].tolist())
            for word in _words(tokens):
                flags = {bool(labelled[row, index]) for index in word}
                assert len(flags) == 1, f"word {[tokens[i] for i in word]} is only partly masked"
                if flags == {True} and len(word) > 1:
                    multi_token_words_masked += 1
                    # One 80/10/10 decision per word: a masked word is masked in every token.
                    kinds = {int(batch["input_ids"][row, index]) == MASK for index in word}
                    assert len(kinds) == 1
        eligible += int(
            (batch["attention_mask"].bool() & ~torch.isin(original, torch.tensor([CLS, SEP]))).sum()
        )
        predicted += int(labelled.sum())
    assert multi_token_words_masked > 50
    assert abs(predicted / eligible - 0.15) < 0.03


# ---- next-sentence prediction -------------------------------------------------------------------------------


def test_next_sentence_labels_are_balanced_and_pairs_are_real(tokenizer, examples):
    collator = DataCollatorForSoraPretraining(tokenizer, denoising=False, seed=2)
    labels = []
    for batch_examples in _batches(collator, examples, repeats=26):
        batch = collator(batch_examples)
        original = _original_ids(batch)
        for row, example in enumerate(batch_examples):
            ids = original[row][batch["attention_mask"][row].bool()].tolist()
            first_sep = ids.index(SEP)
            first, second = ids[1:first_sep], ids[first_sep + 1 : -1]
            assert ids[0] == CLS and ids[-1] == SEP
            chunk = [token for sentence in example["sentences"] for token in sentence]
            assert first == chunk[: len(first)], "segment A must be the start of the chunk"
            if len(example["sentences"]) >= 2:
                boundaries = list(itertools.accumulate(len(sentence) for sentence in example["sentences"]))
                assert len(first) in boundaries[:-1], (
                    "a multi-sentence chunk must split at a sentence boundary"
                )
            label = int(batch["next_sentence_label"][row])
            if label == 0:
                assert first + second == chunk, "label 0 must be the chunk's own continuation"
            else:
                assert second != chunk[len(first) :]
                others = [
                    [token for sentence in other["sentences"] for token in sentence]
                    for index, other in enumerate(batch_examples)
                    if index != row
                ]
                # B is the start of another row's continuation: a contiguous piece of another chunk.
                assert any(
                    second == other[start : start + len(second)]
                    for other in others
                    for start in range(1, len(other))
                ), "label 1 must take B from another row"
            labels.append(label)
    assert len(labels) > 1000
    assert abs(statistics.mean(labels) - 0.5) < 0.05


def test_token_type_ids_and_attention_mask_layout(tokenizer, examples):
    batch = DataCollatorForSoraPretraining(tokenizer, seed=3)(examples[:16])
    original = _original_ids(batch)
    for row in range(16):
        length = int(batch["attention_mask"][row].sum())
        assert batch["attention_mask"][row, :length].all() and not batch["attention_mask"][row, length:].any()
        first_sep = original[row].tolist().index(SEP)
        expected = [0] * (first_sep + 1) + [1] * (length - first_sep - 1) + [0] * (original.shape[1] - length)
        assert batch["token_type_ids"][row].tolist() == expected
        assert original[row, length - 1] == SEP and (original[row, length:] == PAD).all()


# ---- denoising --------------------------------------------------------------------------------------------


def test_decoder_labels_are_the_original_chunk(tokenizer, examples):
    batch = DataCollatorForSoraPretraining(tokenizer, seed=4)(examples[:32])
    for row, example in enumerate(examples[:32]):
        chunk = [token for sentence in example["sentences"] for token in sentence]
        labels = batch["decoder_labels"][row]
        assert labels[labels != -100].tolist() == [CLS, *chunk, SEP]
        length = len(chunk) + 2
        assert (labels[length:] == -100).all()
        denoising_length = int(batch["denoising_attention_mask"][row].sum())
        assert (batch["denoising_input_ids"][row, denoising_length:] == PAD).all()


def test_text_infilling_replaces_about_30_percent_with_mask_spans(tokenizer, examples):
    collator = DataCollatorForDenoising(tokenizer, permute_sentences=False, seed=5)
    total = removed = masks = 0
    for batch_examples in _batches(collator, examples, repeats=4):
        batch = collator(batch_examples)
        for row, example in enumerate(batch_examples):
            chunk = [token for sentence in example["sentences"] for token in sentence]
            corrupted = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
            assert corrupted[0] == CLS and corrupted[-1] == SEP
            body = corrupted[1:-1]
            kept = [token for token in body if token != MASK]
            # Without permutation the kept tokens are the original in order, with spans cut out.
            iterator = iter(chunk)
            assert all(token in iterator for token in kept)
            assert MASK not in chunk
            assert all(a != MASK or b != MASK for a, b in itertools.pairwise(body)), "spans must not touch"
            total += len(chunk)
            removed += len(chunk) - len(kept)
            masks += body.count(MASK)
            assert batch["labels"][row][batch["labels"][row] != -100].tolist() == [CLS, *chunk, SEP]
    assert abs(removed / total - 0.3) < 0.02
    mean_span = removed / masks
    assert 2.0 < mean_span < 3.5, f"mean span length {mean_span:.2f} is far from Poisson(3)"


def test_sentence_permutation(tokenizer, examples):
    multi = [example for example in examples if len(example["sentences"]) >= 3][:64]
    permuting = DataCollatorForDenoising(tokenizer, infilling_probability=0.0, seed=6)
    batch = permuting(multi)
    reordered = 0
    for row, example in enumerate(multi):
        corrupted = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()[1:-1]
        sentences = example["sentences"]
        # The corrupted text is some order of the same sentences.
        matches = [
            order
            for order in itertools.permutations(range(len(sentences)))
            if corrupted == [token for index in order for token in sentences[index]]
        ]
        assert matches
        reordered += list(range(len(sentences))) not in [list(order) for order in matches]
    assert reordered > len(multi) // 2
    identity = DataCollatorForDenoising(tokenizer, infilling_probability=0.0, permute_sentences=False, seed=6)
    batch = identity(multi)
    assert torch.equal(batch["input_ids"], batch["labels"].clamp(min=0))


def test_denoising_collator_accepts_input_ids(tokenizer):
    batch = DataCollatorForDenoising(tokenizer, seed=0)([{"input_ids": [CLS] + list(range(10, 40)) + [SEP]}])
    assert batch["labels"][0].tolist() == [CLS, *range(10, 40), SEP]
    assert MASK in batch["input_ids"][0].tolist()


# ---- determinism, padding, speed, errors --------------------------------------------------------------------


def test_seeded_collator_is_reproducible(tokenizer, examples):
    first = DataCollatorForSoraPretraining(tokenizer, whole_word_masking=True, seed=11)
    second = DataCollatorForSoraPretraining(tokenizer, whole_word_masking=True, seed=11)
    a, b = first(examples[:32]), second(examples[:32])
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    again = first(examples[:32])
    assert not torch.equal(a["labels"], again["labels"]), "successive batches must draw new masks"
    other = DataCollatorForSoraPretraining(tokenizer, whole_word_masking=True, seed=12)(examples[:32])
    assert not torch.equal(a["labels"], other["labels"])


def test_unseeded_collator_is_a_function_of_trainer_seed_and_batch(tokenizer, examples):
    """Resume-safe: the masks depend on torch's initial seed and the batch, not on how much RNG was used."""
    collator = DataCollatorForSoraPretraining(tokenizer)
    torch.manual_seed(0)
    a = collator(examples[:8])
    torch.rand(1000)  # other consumers of the global RNG do not change the batch
    b = collator(examples[:8])
    assert all(torch.equal(a[key], b[key]) for key in a)
    torch.manual_seed(1)
    assert not torch.equal(collator(examples[:8])["input_ids"], a["input_ids"])


def test_padding_to_multiple_of_8_with_ignored_labels(tokenizer, examples):
    batch = DataCollatorForSoraPretraining(tokenizer, seed=0)(examples[:5])
    for key, value in batch.items():
        assert value.dtype == torch.long
        if key != "next_sentence_label":
            assert value.shape[1] % 8 == 0, key
    pad = batch["attention_mask"] == 0
    assert (batch["input_ids"][pad] == PAD).all() and (batch["labels"][pad] == -100).all()
    assert (batch["token_type_ids"][pad] == 0).all()
    longest = int(batch["attention_mask"].sum(dim=1).max())
    assert batch["input_ids"].shape[1] - longest < 8
    exact = DataCollatorForSoraPretraining(tokenizer, pad_to_multiple_of=None, seed=0)(examples[:5])
    assert exact["input_ids"].shape[1] == longest
    assert exact["decoder_labels"].shape[1] == int((exact["decoder_labels"] != -100).sum(dim=1).max())


def test_batch_trains_sora_for_pretraining(tokenizer, examples):
    from sora_hf import SoraConfig, SoraForPreTraining

    config = SoraConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        is_encoder_decoder=True,
    )
    torch.manual_seed(0)
    output = SoraForPreTraining(config)(**DataCollatorForSoraPretraining(tokenizer, seed=0)(examples[:8]))
    assert torch.isfinite(output.loss)


def test_collation_of_64_by_128_is_fast(tokenizer):
    generator = torch.Generator().manual_seed(0)
    vocab = len(tokenizer)
    examples = [
        {"sentences": torch.randint(5, vocab, (5, 25), generator=generator).tolist()} for _ in range(64)
    ]  # 125 tokens + 3 special = 128
    for whole_word_masking in (False, True):
        collator = DataCollatorForSoraPretraining(tokenizer, whole_word_masking=whole_word_masking, seed=0)
        assert collator(examples)["input_ids"].shape == (64, 128)
        timings = []
        for _ in range(10):
            start = time.perf_counter()
            collator(examples)
            timings.append(time.perf_counter() - start)
        assert statistics.median(timings) < 0.05


def test_collator_rejects_bad_input(tokenizer):
    collator = DataCollatorForSoraPretraining(tokenizer)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        collator([{"input_ids": [1, 2]}])
    with pytest.raises(ValueError, match="no tokens"):
        collator([{"sentences": [[]]}])
    with pytest.raises(ValueError, match="non-empty list"):
        collator([])
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        collator([{"sentences": [[5, len(tokenizer) + 3]]}])
    with pytest.raises(ValueError, match="mlm_probability"):
        DataCollatorForSoraPretraining(tokenizer, mlm_probability=0.0)
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        DataCollatorForSoraPretraining(tokenizer, pad_to_multiple_of=0)
    with pytest.raises(ValueError, match="mask_span_lambda"):
        DataCollatorForDenoising(tokenizer, mask_span_lambda=0)
