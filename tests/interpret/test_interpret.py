"""sora_hf.interpret and `sora-hf explain`: integrated gradients, attention rollout, words, pictures."""

import subprocess
import sys

import pytest
import torch
from conftest import TEXTS, save_tiny_sora

from sora_hf.cli import main as cli_main
from sora_hf.errors import UserInputError
from sora_hf.interpret import (
    aggregate_words,
    attention_rollout,
    delete_words,
    explain,
    integrated_gradients,
    rollout_token_scores,
    shade_html,
)

SENTENCE = "the cat sat on the zebramat in the quiet park"  # "zebramat" is several BPE pieces


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    from sora_hf import SoraForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-classifier")
    labels = {0: "neg", 1: "neu", 2: "pos"}
    # initializer_range 0.2 (not 0.02): logits far enough from the baseline's for a relative completeness check
    return save_tiny_sora(
        folder,
        TEXTS,
        model_class=SoraForSequenceClassification,
        num_labels=3,
        id2label=labels,
        initializer_range=0.2,
    )


@pytest.fixture(scope="module")
def classifier(classifier_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(classifier_dir).eval()
    return model, AutoTokenizer.from_pretrained(classifier_dir)


@pytest.fixture(scope="module")
def bert_classifier(classifier):
    """A tiny BertForSequenceClassification ([CLS] pooling, another architecture) on the same tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification

    _, tokenizer = classifier
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=2,
        initializer_range=0.2,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config).eval(), tokenizer


def logit(model, input_ids, target):
    with torch.no_grad():
        return float(model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[0, target])


@pytest.mark.parametrize("which", ["classifier", "bert_classifier"])
def test_integrated_gradients_are_complete(which, request):
    model, tokenizer = request.getfixturevalue(which)
    result = integrated_gradients(model, tokenizer, SENTENCE, n_steps=64)
    ids = torch.tensor([result["input_ids"]])
    special = torch.tensor([[token in tokenizer.all_special_ids for token in result["input_ids"]]])
    baseline = torch.where(special, ids, torch.full_like(ids, tokenizer.pad_token_id))
    # the baseline keeps <s> and </s>, and puts <pad> everywhere else
    assert special[0, 0] and special[0, -1] and not special[0, 1:-1].any()
    target = result["target"]
    difference = logit(model, ids, target) - logit(model, baseline, target)
    total = sum(result["token_scores"])
    assert abs(difference) > 0.05
    assert total == pytest.approx(difference, rel=0.05)
    assert abs(result["delta"]) <= 0.05 * abs(difference)
    # special tokens are equal in text and baseline: nothing to attribute to them
    assert result["token_scores"][0] == pytest.approx(0.0, abs=1e-6)


def test_word_scores_sum_the_pieces_of_each_word(classifier):
    _, tokenizer = classifier
    encoding = tokenizer(SENTENCE, return_offsets_mapping=True)
    word_ids = encoding.word_ids()
    scores = [float(i + 1) for i in range(len(word_ids))]  # distinct per token
    words, word_scores, spans = aggregate_words(SENTENCE, scores, word_ids, encoding["offset_mapping"])
    assert words == SENTENCE.split()
    pieces = [i for i, w in enumerate(word_ids) if w == words.index("zebramat")]
    assert len(pieces) > 1
    assert word_scores[words.index("zebramat")] == sum(scores[i] for i in pieces)
    assert sum(word_scores) == sum(s for s, w in zip(scores, word_ids) if w is not None)
    assert [SENTENCE[a:b] for a, b in spans] == words
    assert delete_words(SENTENCE, [spans[1], spans[5]]) == "the sat on the in the quiet park"


def test_attention_rollout_rows_sum_to_one(classifier):
    model, tokenizer = classifier
    assert model.config._attn_implementation == "sdpa"  # rollout switches to eager for one call, then back
    result = rollout_token_scores(model, tokenizer, SENTENCE)
    assert model.config._attn_implementation == "sdpa"
    length = len(result["input_ids"])
    assert result["rollout"].shape == (length, length)
    assert torch.allclose(result["rollout"].sum(-1), torch.ones(length), atol=1e-5)
    assert sum(result["token_scores"]) == pytest.approx(1.0, abs=1e-5)
    # one layer of uniform attention over 2 tokens: (A + I) renormalised
    uniform = torch.full((1, 4, 2, 2), 0.5)
    assert torch.allclose(attention_rollout([uniform])[0], torch.tensor([[0.75, 0.25], [0.25, 0.75]]))


def test_explain_works_on_bert_with_both_methods(bert_classifier):
    model, tokenizer = bert_classifier
    for method in ("ig", "rollout"):
        explanation = explain(model, tokenizer, SENTENCE, method=method, n_steps=8)
        assert explanation.words == SENTENCE.split()
        assert explanation.label_id in (0, 1)
        assert len(explanation.top_words(3)) == 3
    html = explanation.to_html()
    assert html.count("<span") == len(SENTENCE.split()) and "zebramat" in html
    assert "&lt;b&gt;" in shade_html(["<b>"], [1.0])


def test_explain_command_prints_top_words_and_writes_the_picture(classifier_dir, tmp_path, capsys):
    picture, snippet = tmp_path / "why.png", tmp_path / "why.html"
    code = cli_main(
        ["explain", "--model", classifier_dir, SENTENCE, "--output", str(picture), "--html", str(snippet)]
        + ["--top_k", "3", "--n_steps", "16"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("label: ") and lines[0].split()[1] in ("neg", "neu", "pos")
    assert lines[1] == "top words (integrated gradients):"
    top = [line.split("\t")[0].strip() for line in lines[2:5]]
    assert set(top) <= set(SENTENCE.split()) and len(top) == 3
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert snippet.read_text().count("<span") == len(SENTENCE.split())
    code = cli_main(
        ["explain", "--model", classifier_dir, SENTENCE, "--method", "rollout", "--output", str(picture)]
    )
    assert code == 0 and "top words (attention rollout):" in capsys.readouterr().out


def test_a_model_that_is_not_a_classifier_is_refused(tmp_path, classifier, capsys):
    from sora_hf import SoraForPreTraining

    pretraining_dir = save_tiny_sora(tmp_path / "pretraining", TEXTS)
    code = cli_main(["explain", "--model", pretraining_dir, SENTENCE, "--output", str(tmp_path / "x.png")])
    error = capsys.readouterr().err
    assert code == 2
    assert "SoraForPreTraining, not a sequence classifier" in error and "sora-hf finetune" in error
    assert not (tmp_path / "x.png").exists()
    model = SoraForPreTraining.from_pretrained(pretraining_dir)
    _, tokenizer = classifier
    for method in ("ig", "rollout"):
        with pytest.raises(UserInputError, match="SoraForPreTraining is not a sequence classifier"):
            explain(model, tokenizer, SENTENCE, method=method)


def test_bad_arguments_are_named(classifier, monkeypatch):
    model, tokenizer = classifier
    with pytest.raises(UserInputError, match="method: 'shap'"):
        explain(model, tokenizer, SENTENCE, method="shap")
    with pytest.raises(UserInputError, match="text: ''"):
        explain(model, tokenizer, "")
    with pytest.raises(UserInputError, match="target: 7"):
        explain(model, tokenizer, SENTENCE, target=7)
    monkeypatch.setitem(sys.modules, "captum.attr", None)  # as if captum were not installed
    with pytest.raises(ImportError, match=r"pip install -e \.\[interpret\]"):
        explain(model, tokenizer, SENTENCE)


def test_explain_help_imports_neither_torch_nor_transformers():
    probe = (
        "import sys\nfrom sora_hf_cli import main\ntry:\n    main(['explain', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'captum') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--top-k, --top_k TOP_K" in done.stdout and "captum" in done.stdout
    assert done.stdout.splitlines()[-1] == "[]"
