"""The pseudo-label tagger: `Dataset.map` over length-sorted batches tags each word as the teacher does alone."""

import torch
from conftest import save_tiny_sora
from transformers import AutoTokenizer

from sora_hf import SoraForTokenClassification
from sora_hf.data.tasks import load_task_dataset
from sora_hf.training.pseudo_labels import first_piece_tags, tag_words


def tiny_tagger(tmp_path):
    """A random token classifier with the NER tags and a tokenizer for pre-split words."""
    ner = load_task_dataset("ner")["train"]
    texts = [" ".join(tokens) for tokens in ner["tokens"]]
    folder = save_tiny_sora(
        tmp_path,
        texts,
        model_class=SoraForTokenClassification,
        num_labels=ner.features["ner_tags"].feature.num_classes,
        initializer_range=0.5,  # large weights: the words get different tags
    )
    model = SoraForTokenClassification.from_pretrained(folder).eval()
    return model, AutoTokenizer.from_pretrained(folder, add_prefix_space=True), list(ner["tokens"][:10])


def test_first_piece_tags_read_each_words_first_sub_token():
    # <s> w0 w0 w1 </s> <pad>; word 2 was cut off by the truncation
    assert first_piece_tags([None, 0, 0, 1, None, None], [9, 3, 4, 5, 9, 9], num_words=3) == [3, 5, 0]


def test_tags_equal_the_teacher_on_each_sentence_alone(tmp_path):
    model, tokenizer, sentences = tiny_tagger(tmp_path)
    sentences = [*sentences, sentences[0] * 4]  # a long one: its last words fall past max_length
    tags = tag_words(model, tokenizer, sentences, batch_size=3, max_length=24)
    assert [len(row) for row in tags] == [len(words) for words in sentences]
    for words, row in zip(sentences, tags):
        encoded = tokenizer(
            words, is_split_into_words=True, truncation=True, max_length=24, return_tensors="pt"
        )
        with torch.no_grad():
            predicted = model(**encoded).logits[0].argmax(-1).tolist()  # alone: no padding
        assert row == first_piece_tags(encoded.word_ids(), predicted, len(words))
    assert tags[-1][-1] == 0  # cut off: 'O'
    assert len({tag for row in tags for tag in row}) > 2
    assert tag_words(model, tokenizer, []) == []
