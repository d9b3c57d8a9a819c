"""The pseudo-label tagger: `Dataset.map` over length-sorted batches tags each word as the teacher does alone."""

import torch
from transformers import AutoTokenizer

from sora_hf import SoraConfig, SoraForTokenClassification, train_sora_tokenizer
from sora_hf.data.tasks import load_task_dataset
from sora_hf.training.pseudo_labels import first_piece_tags, tag_words


def tiny_tagger(tmp_path):
    """A random token classifier with the NER tags and a tokenizer for pre-split words."""
    ner = load_task_dataset("ner")["train"]
    texts = [" ".join(tokens) for tokens in ner["tokens"]]
    train_sora_tokenizer(iter(texts), vocab_size=600).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path, add_prefix_space=True)
    torch.manual_seed(0)
    config = SoraConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=ner.features["ner_tags"].feature.num_classes,
        initializer_range=0.5,  # large weights: the words get different tags
    )
    return SoraForTokenClassification(config).eval(), tokenizer, list(ner["tokens"][:10])


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
