"""Tag unlabelled tweets with a fine-tuned token-classification teacher: extra NER training data (self-training).

The teacher (any transformers token classifier with the same tag names, e.g. all-MiniLM-L6-v2 fine-tuned by
`run_ner.py`) tags whole words, each by its first sub-token, so any tokenizer works on both sides.
"""

import re
import uuid

import torch
from datasets import Dataset, Features
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ..data.tasks import load_task_dataset

# The NER tweets' word splitting, approximately: URLs, @user / #tag, contractions ("do" + "n't", "it" + "'s"),
# words, then runs of punctuation.
TWEET_WORD = re.compile(r"https?://\S+|[@#]\w+|\w+(?=n't\b)|n't\b|'\w+|\w+(?:[-.]\w+)*|[^\w\s]+")


def split_tweet_words(text: str) -> list[str]:
    """A tweet's words, split the way the NER tweets are."""
    return TWEET_WORD.findall(text)


def load_teacher_tagger(teacher: str, labels: list[str]):
    """The teacher token classifier and its tokenizer; its tag names must be `labels`, in order."""
    model = AutoModelForTokenClassification.from_pretrained(teacher).eval()
    teacher_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if teacher_labels != labels:
        raise ValueError(
            f"The pseudo-label teacher {teacher!r} predicts {teacher_labels}, but this task's tags are {labels}; "
            "fine-tune the teacher on this task first (examples/run_ner.py --model_name_or_path TEACHER)."
        )
    return model, AutoTokenizer.from_pretrained(teacher)


def first_piece_tags(word_ids: list[int | None], predicted: list[int], num_words: int) -> list[int]:
    """Each word's tag: the prediction at its first sub-token, 0 ('O') for a word the truncation cut off."""
    first_piece: dict[int, int] = {}
    for position, word_id in enumerate(word_ids):
        if word_id is not None and word_id not in first_piece:
            first_piece[word_id] = predicted[position]
    return [first_piece.get(word, 0) for word in range(num_words)]


def tag_words(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[list[str]],
    batch_size: int = 64,
    max_length: int = 128,
) -> list[list[int]]:
    """The teacher's tag id for every word of every sentence (its first sub-token's argmax; cut-off words 'O'),
    through `Dataset.map` over batches of sentences of similar length (they pad little)."""
    if not sentences:
        return []
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    device = next(model.parameters()).device

    def tag(batch: list[list[str]]) -> dict[str, list[list[int]]]:
        encoded = tokenizer(
            batch,
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            predicted = model(**encoded.to(device)).logits.argmax(-1).tolist()
        tags = [
            first_piece_tags(encoded.word_ids(row), predicted[row], len(words))
            for row, words in enumerate(batch)
        ]
        return {"tags": tags}

    tagged = Dataset.from_dict({"words": [sentences[i] for i in order]}).map(
        tag,
        batched=True,
        batch_size=batch_size,
        input_columns="words",
        remove_columns=["words"],
        keep_in_memory=True,
        new_fingerprint=uuid.uuid4().hex,  # the teacher decides the result: never reuse a cached one
        desc="Tagging words with the teacher",
    )
    tags: list[list[int]] = [[] for _ in sentences]
    for index, sentence_tags in zip(order, tagged["tags"]):
        tags[index] = sentence_tags
    return tags


def pseudo_labelled_tweets(
    teacher: str, count: int, features: Features, exclude: list[list[str]], seed: int = 0
) -> Dataset:
    """`count` tweets of the sentiment task's training split, tagged by `teacher`, with the NER train `features`.

    Tweets whose words equal a tweet of `exclude` (the NER validation and test splits) are dropped.
    """
    labels = features["ner_tags"].feature.names
    model, tokenizer = load_teacher_tagger(teacher, labels)
    excluded = {tuple(w.lower() for w in words) for words in exclude}
    texts = load_task_dataset("sentiment")["train"].shuffle(seed=seed)["text"]
    sentences = []
    for text in texts:
        words = split_tweet_words(text)
        if words and tuple(w.lower() for w in words) not in excluded:
            sentences.append(words)
        if len(sentences) == count:
            break
    tags = tag_words(model, tokenizer, sentences)
    ids = [f"pseudo-{i}" for i in range(len(sentences))]
    return Dataset.from_dict({"id": ids, "tokens": sentences, "ner_tags": tags}, features=features)
