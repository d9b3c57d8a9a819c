"""`pipeline(task, model=<saved Sora folder>)`: the in-library tasks and the ones sora_hf brings back."""

import random

import pytest
import torch
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY, REMOVED_TASKS

from sora_hf import (
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
    train_sora_tokenizer,
)
from sora_hf.pipelines import (
    QuestionAnsweringPipeline,
    SummarizationPipeline,
    Text2TextGenerationPipeline,
    TranslationPipeline,
    register_sora_pipelines,
)

WORDS = "apple river stone cloud green house music light paper table water night bread chair window".split()
QUESTION = "Which number is in the text?"
SEQ2SEQ_KEYS = {"text2text-generation": "generated", "summarization": "summary", "translation": "translation"}


def make_context(
    rng: random.Random, num_words: int, with_number: bool = True
) -> tuple[str, tuple[int, int] | None]:
    """Lowercase words with (optionally) one number among them; returns the text and the number's span."""
    words = [rng.choice(WORDS) for _ in range(num_words)]
    if not with_number:
        return " ".join(words), None
    number, position = str(rng.randint(10, 9999)), rng.randint(0, num_words)
    words.insert(position, number)
    start = len(" ".join(words[:position])) + (1 if position else 0)
    return " ".join(words), (start, start + len(number))


def tiny_config(tokenizer, **overrides) -> SoraConfig:
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return SoraConfig(vocab_size=len(tokenizer), max_position_embeddings=128, **{**sizes, **overrides})


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_sora_pipelines()


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    texts = [make_context(rng, 12)[0] for _ in range(300)] + [QUESTION, "Anna lives in Paris since 1999."] * 5
    return train_sora_tokenizer(texts, vocab_size=420)


@pytest.fixture(scope="module")
def save(tokenizer, tmp_path_factory):
    """Save a model with the tokenizer into a fresh folder; returns the folder."""

    def _save(model) -> str:
        folder = tmp_path_factory.mktemp(type(model).__name__)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return str(folder)

    return _save


@pytest.fixture(scope="module")
def qa_folder(tokenizer, save):
    torch.manual_seed(0)
    return save(SoraForQuestionAnswering(tiny_config(tokenizer)))


@pytest.fixture(scope="module")
def seq2seq_folder(tokenizer, save):
    torch.manual_seed(0)
    return save(
        SoraForConditionalGeneration(tiny_config(tokenizer, is_encoder_decoder=True, decoder_layers=2))
    )


@pytest.fixture(scope="module")
def trained_qa(tokenizer):
    """A SoraForQuestionAnswering trained to point at the number in a context, or at <s> without one."""
    rng = random.Random(1)
    torch.manual_seed(0)
    config = tiny_config(
        tokenizer,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = SoraForQuestionAnswering(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(80):
        batch = [make_context(rng, rng.randint(3, 25), with_number=rng.random() > 0.2) for _ in range(32)]
        encoded = tokenizer(
            [QUESTION] * len(batch), [context for context, _ in batch], padding=True, return_tensors="pt"
        )
        starts, ends = [], []
        for index, (_, span) in enumerate(batch):
            if span is None:
                starts.append(0), ends.append(0)
            else:
                starts.append(encoded.char_to_token(index, span[0], sequence_index=1))
                ends.append(encoded.char_to_token(index, span[1] - 1, sequence_index=1))
        loss = model(**encoded, start_positions=torch.tensor(starts), end_positions=torch.tensor(ends)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def test_register_sora_pipelines_is_idempotent():
    register_sora_pipelines()
    register_sora_pipelines()
    expected = {
        "question-answering": QuestionAnsweringPipeline,
        "text2text-generation": Text2TextGenerationPipeline,
        "summarization": SummarizationPipeline,
        "translation": TranslationPipeline,
    }
    for task, pipeline_class in expected.items():
        assert task not in REMOVED_TASKS
        assert PIPELINE_REGISTRY.check_task(task)[1]["impl"] is pipeline_class
    assert "image-to-image" in REMOVED_TASKS  # only our four names leave the table


@pytest.mark.parametrize(
    "task, model_class",
    [
        ("fill-mask", SoraForMaskedLM),
        ("text-classification", SoraForSequenceClassification),
        ("token-classification", SoraForTokenClassification),
        ("feature-extraction", SoraModel),
    ],
)
def test_in_library_pipelines_run_sora(task, model_class, tokenizer, save):
    labels = {"id2label": {0: "O", 1: "B-LOC", 2: "I-LOC"}, "label2id": {"O": 0, "B-LOC": 1, "I-LOC": 2}}
    torch.manual_seed(0)
    pipe = pipeline(task, model=save(model_class(tiny_config(tokenizer, **labels))))
    assert isinstance(pipe.model, model_class)
    text = "Anna lives in Paris since 1999."
    if task == "fill-mask":
        predictions = pipe("Anna lives in <mask> since 1999.", top_k=3)
        assert [set(p) for p in predictions] == [{"score", "token", "token_str", "sequence"}] * 3
        assert [p["score"] for p in predictions] == sorted((p["score"] for p in predictions), reverse=True)
    elif task == "text-classification":
        [prediction] = pipe(text)
        assert prediction["label"] in labels["label2id"] and 0.0 < prediction["score"] <= 1.0
    elif task == "token-classification":
        entities = pipe(text, ignore_labels=[])
        assert len(entities) == len(tokenizer(text, add_special_tokens=False)["input_ids"])
        for entity in entities:
            assert entity["entity"] in labels["label2id"] and 0 <= entity["start"] < entity["end"] <= len(
                text
            )
    else:
        features = pipe(text)
        assert len(features) == 1 and len(features[0]) == len(tokenizer(text)["input_ids"])
        assert {len(vector) for vector in features[0]} == {32}


def assert_answer(answer: dict, context: str):
    assert set(answer) == {"score", "start", "end", "answer"}
    assert 0.0 <= answer["score"] <= 1.0
    assert 0 <= answer["start"] < answer["end"] <= len(context)
    assert context[answer["start"] : answer["end"]] == answer["answer"]


def test_question_answering_accepts_every_v4_call_form(qa_folder):
    qa = pipeline("question-answering", model=qa_folder)
    assert isinstance(qa, QuestionAnsweringPipeline)
    question, context = "Where does Anna live?", "Anna lives in Paris since 1999."
    single = qa(question=question, context=context)
    assert_answer(single, context)
    assert qa({"question": question, "context": context}) == single
    assert qa(question, context) == single
    assert qa([{"question": question, "context": context}]) == single  # one example: a dict, as in v4
    several = qa(
        [{"question": question, "context": context}, {"question": "Since when?", "context": context}]
    )
    assert len(several) == 2 and several[0] == single
    assert qa(question=[question, "Since when?"], context=context) == several
    assert qa(question=[question, "Since when?"], context=[context, context], batch_size=2) == several


def test_question_answering_top_k_returns_distinct_context_spans(qa_folder):
    qa = pipeline("question-answering", model=qa_folder)
    context = "Anna lives in Paris since 1999. The garden has a green chair and a table."
    answers = qa(question="Where does Anna live?", context=context, top_k=4, max_answer_len=3)
    assert len(answers) == 4
    for answer in answers:
        assert_answer(answer, context)
        assert (
            len(answer["answer"].split()) <= 3
        )  # whole words of at most 3 tokens (each word here is <= 1 token)
    assert [a["score"] for a in answers] == sorted((a["score"] for a in answers), reverse=True)
    assert len({(a["start"], a["end"]) for a in answers}) == 4
    question_words = {"Where", "does", "live?"}
    assert not any(set(a["answer"].split()) & question_words for a in answers)  # only the context is searched


def test_question_answering_splits_long_contexts_into_overlapping_windows(qa_folder, tokenizer):
    qa = pipeline("question-answering", model=qa_folder)
    context = make_context(random.Random(2), 60)[0]
    windows = list(qa.preprocess({"question": QUESTION, "context": context}, max_seq_len=32, doc_stride=8))
    assert len(windows) > 2 and [w["is_last"] for w in windows] == [False] * (len(windows) - 1) + [True]
    context_ids = [
        [token for token, masked in zip(w["input_ids"][0].tolist(), w["p_mask"][0].tolist()) if not masked]
        for w in windows
    ]
    assert all(w["input_ids"].shape[1] <= 32 for w in windows)
    for previous, following in zip(context_ids, context_ids[1:]):
        assert previous[-8:] == following[:8]  # consecutive windows share doc_stride tokens
    full_context = tokenizer(context, add_special_tokens=False)["input_ids"]
    assert context_ids[0] + [token for ids in context_ids[1:] for token in ids[8:]] == full_context

    answers = qa(question=QUESTION, context=context, max_seq_len=32, doc_stride=8, top_k=5)
    assert len(answers) == 5
    for answer in answers:
        assert_answer(answer, context)


def test_question_answering_with_the_context_first(qa_folder):
    qa = pipeline("question-answering", model=qa_folder)
    qa.tokenizer.padding_side = "left"  # the v4 convention: then the context comes first and is truncated
    rng = random.Random(4)
    examples = [{"question": QUESTION, "context": make_context(rng, n)[0]} for n in (5, 40, 12)]
    windows = list(qa.preprocess(examples[1], max_seq_len=32, doc_stride=8))
    assert len(windows) > 1
    question_ids = qa.tokenizer(QUESTION, add_special_tokens=False)["input_ids"]
    for window in windows:
        assert window["input_ids"][0].tolist()[-len(question_ids) - 1 : -1] == question_ids
        assert window["p_mask"][0].tolist()[-len(question_ids) - 2 :] == [1] * (len(question_ids) + 2)
    # Left-padded batches shift every per-token value: the widened (whole-word) answer must still contain the
    # tokens' own span. (Batched and single scores differ here: padding on the left moves the positions.)
    for batch_size in (1, 3):
        token_answers = qa(
            examples, max_seq_len=32, doc_stride=8, align_to_words=False, batch_size=batch_size
        )
        word_answers = qa(examples, max_seq_len=32, doc_stride=8, batch_size=batch_size)
        for example, token_answer, word_answer in zip(examples, token_answers, word_answers):
            context = example["context"]
            assert_answer(token_answer, context)
            assert_answer(word_answer, context)
            assert word_answer["start"] <= token_answer["start"] <= token_answer["end"] <= word_answer["end"]
            assert word_answer["start"] == 0 or context[word_answer["start"] - 1] == " "
            assert word_answer["end"] == len(context) or context[word_answer["end"]] == " "


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda qa: qa(question="Where?"), "both `question=` and `context=`"),
        (lambda qa: qa({"question": "Where?", "text": "Paris"}), "keys 'question' and 'context'"),
        (lambda qa: qa(question="Where?", context="  "), "non-empty string as `context`"),
        (lambda qa: qa(question=["a", "b"], context=["c"]), "2 questions and 1 contexts"),
        (lambda qa: qa(question="Where?", context="Paris", top_k=0), "`top_k` must be an int >= 1"),
        (lambda qa: qa(question="Where?", context="Paris", max_seq_len=16, doc_stride=16), "doc_stride=16"),
        (lambda qa: qa(question="Where? " * 20, context="Paris", max_seq_len=16), "no room for the context"),
    ],
)
def test_question_answering_rejects_bad_input(qa_folder, call, message):
    qa = pipeline("question-answering", model=qa_folder)
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("(", r"\(")):
        call(qa)


def test_trained_question_answering_finds_the_number(trained_qa, tokenizer):
    qa = pipeline("question-answering", model=trained_qa, tokenizer=tokenizer)
    rng = random.Random(3)
    short = [make_context(rng, rng.randint(3, 25)) for _ in range(10)]
    answers = qa([{"question": QUESTION, "context": context} for context, _ in short])
    assert sum((a["start"], a["end"]) == span for a, (_, span) in zip(answers, short)) >= 9

    # 60 words do not fit one 32-token window: the number has to be found in whichever window holds it.
    long = [make_context(rng, 60) for _ in range(10)]
    examples = [{"question": QUESTION, "context": context} for context, _ in long]
    answers = qa(examples, max_seq_len=32, doc_stride=8)
    assert sum((a["start"], a["end"]) == span for a, (_, span) in zip(answers, long)) >= 8
    batched = qa(examples, max_seq_len=32, doc_stride=8, batch_size=4)  # padded windows give the same answers
    assert [(a["start"], a["end"]) for a in batched] == [(a["start"], a["end"]) for a in answers]
    assert [a["score"] for a in batched] == pytest.approx([a["score"] for a in answers], abs=1e-5)

    no_number = [make_context(rng, rng.randint(3, 25), with_number=False)[0] for _ in range(10)]
    answers = qa(question=[QUESTION] * 10, context=no_number, handle_impossible_answer=True)
    assert sum(a == {"score": a["score"], "start": 0, "end": 0, "answer": ""} for a in answers) >= 9


@pytest.mark.parametrize("task", list(SEQ2SEQ_KEYS))
def test_seq2seq_pipelines_return_v4_format(task, seq2seq_folder):
    pipe = pipeline(task, model=seq2seq_folder, max_new_tokens=4)
    key = f"{SEQ2SEQ_KEYS[task]}_text"
    single = pipe("Anna lives in Paris.")
    assert isinstance(single, list) and len(single) == 1 and set(single[0]) == {key}
    assert isinstance(single[0][key], str)
    batch = pipe(["Anna lives in Paris.", "The green chair"])
    assert len(batch) == 2 and all(set(record) == {key} for record in batch) and batch[0] == single[0]
    pairs = pipe(["Anna lives in Paris.", "The green chair"], num_beams=2, num_return_sequences=2)
    assert [len(records) for records in pairs] == [2, 2]
    ids = pipe("Anna lives in Paris.", return_tensors=True)
    assert set(ids[0]) == {f"{SEQ2SEQ_KEYS[task]}_token_ids"}


@pytest.mark.parametrize("generate_kwargs", [{}, {"num_beams": 3}, {"num_beams": 2, "length_penalty": 0.5}])
def test_seq2seq_pipeline_generates_what_model_generate_does(generate_kwargs, seq2seq_folder, tokenizer):
    pipe = pipeline("text2text-generation", model=seq2seq_folder)
    text = "Anna lives in Paris since 1999."
    [record] = pipe(text, return_tensors=True, max_new_tokens=8, **generate_kwargs)
    encoded = tokenizer(text, return_tensors="pt", return_token_type_ids=False)
    expected = pipe.model.generate(**encoded, max_new_tokens=8, **generate_kwargs)[0]
    assert torch.equal(record["generated_token_ids"], expected)
    [text_record] = pipe(text, max_new_tokens=8, **generate_kwargs)
    assert text_record["generated_text"] == tokenizer.decode(expected, skip_special_tokens=True)


def test_seq2seq_batches_like_model_generate_on_a_padded_batch(seq2seq_folder, tokenizer):
    pipe = pipeline("summarization", model=seq2seq_folder)
    texts = ["Anna lives in Paris since 1999.", "green chair", "The river and the stone house at night."]
    records = pipe(texts, return_tensors=True, max_new_tokens=6, batch_size=3)
    encoded = tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False)
    expected = pipe.model.generate(**encoded, max_new_tokens=6)
    for record, ids in zip(records, expected):
        assert torch.equal(record["summary_token_ids"], ids)


def test_seq2seq_generation_kwargs_reach_generate(seq2seq_folder):
    pipe = pipeline("translation", model=seq2seq_folder, max_new_tokens=2)
    [short] = pipe("Anna lives in Paris.", return_tensors=True)
    assert short["translation_token_ids"].shape[-1] <= 3  # decoder start token + 2 new tokens
    [longer] = pipe("Anna lives in Paris.", return_tensors=True, max_new_tokens=5, min_new_tokens=5)
    assert longer["translation_token_ids"].shape[-1] == 6
    torch.manual_seed(0)
    sampled = pipe("Anna lives in Paris.", do_sample=True, top_k=50, num_return_sequences=3, max_new_tokens=5)
    assert len(sampled) == 3


def test_seq2seq_pipelines_reject_bad_input(seq2seq_folder, qa_folder):
    pipe = pipeline("summarization", model=seq2seq_folder)
    with pytest.raises(ValueError, match="takes a string or a list of strings"):
        pipe(42)
    qa_model = SoraForQuestionAnswering.from_pretrained(qa_folder)
    with pytest.raises(ValueError, match="cannot generate"):
        pipeline("summarization", model=qa_model, tokenizer=qa_folder)
