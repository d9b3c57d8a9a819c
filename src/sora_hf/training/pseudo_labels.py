"""Tag unlabelled tweets with a fine-tuned token-classification teacher: extra NER training data (self-training).

The teacher (any transformers token classifier with the same tag names, e.g. all-MiniLM-L6-v2 fine-tuned by
`run_ner.py`) tags whole words, each by its first sub-token, so any tokenizer works on both sides.
"""

import re

import torch
from datasets import Dataset, Features
from transformers import AutoModelForTokenClassification, AutoTokenizer

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


@torch.inference_mode()
def tag_words(model, tokenizer, sentences: list[list[str]], batch_size: int = 64, max_length: int = 128):
    """The teacher's tag id for every word of every sentence (its first sub-token's argmax; cut-off words 'O')."""
    tags: list[list[int]] = [[] for _ in sentences]
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # similar lengths, little padding
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        encoded = tokenizer(
            [sentences[i] for i in batch],
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        predicted = model(**encoded).logits.argmax(-1)
        for row, index in enumerate(batch):
            first_piece: dict[int, int] = {}
            for position, word_id in enumerate(encoded.word_ids(row)):
                if word_id is not None and word_id not in first_piece:
                    first_piece[word_id] = int(predicted[row, position])
            tags[index] = [first_piece.get(w, 0) for w in range(len(sentences[index]))]
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
