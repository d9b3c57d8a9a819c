"""Pretraining that grows: size presets and the flags over them, the model-FLOPs formula against torch's own counter,
gradient checkpointing, and the streaming corpus (packing, passes, sharding over two `accelerate launch` processes,
and a resumed run that trains on exactly the chunks the uninterrupted run trained on)."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import SCRIPTS_DIR
from torch.utils.flop_counter import FlopCounterMode
from transformers import HfArgumentParser, TrainingArguments

from sora_hf import SoraConfig, SoraForPreTraining, train_sora_tokenizer
from sora_hf.argument_files import parse_dataclasses
from sora_hf.cli import main as cli_main
from sora_hf.data.corpus import build_corpus
from sora_hf.errors import UserInputError
from sora_hf.packaged import packaged_checkpoint_path
from sora_hf.training.collators import DataCollatorForSoraPretraining
from sora_hf.training.model_sizes import (
    MODEL_SIZES,
    batch_lengths,
    non_embedding_parameters,
    pretraining_step_flops,
    resolve_model_size,
)
from sora_hf.training.pretraining import PretrainingArguments, model_sizes
from sora_hf.training.pretraining_data import prepare_pretraining_dataset
from sora_hf.training.pretraining_stream import STREAM_STATE_FILE, PretrainingStream, resume_stream
from sora_hf.training.trainer import SoraTrainer

SCRIPT = SCRIPTS_DIR / "pretraining_stream_ddp.py"
SOURCES, MAX_DOCS = ["jargon", "wordnet"], 150
TINY = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4"]
TINY += ["--intermediate_size", "64", "--decoder_layers", "1"]


@pytest.fixture(scope="module")
def corpus_and_tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    corpus = build_corpus(folder / "corpus", sources=SOURCES, max_docs_per_source=MAX_DOCS, verbose=False)
    tokenizer = train_sora_tokenizer(iter(corpus["train"]["text"]), vocab_size=400)
    tokenizer.save_pretrained(folder / "tokenizer")
    return folder, corpus, tokenizer


def parse(*argv: str) -> PretrainingArguments:
    parser = HfArgumentParser((PretrainingArguments, TrainingArguments))
    return parse_dataclasses(parser, ["--output_dir", "unused", *argv])[0]


def tiny_config(tokenizer, **overrides) -> SoraConfig:
    sizes = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    return SoraConfig(
        vocab_size=len(tokenizer), **sizes, decoder_layers=2, max_position_embeddings=64, **overrides
    )


def test_small_is_the_packaged_shape_and_flags_override_a_preset():
    packaged = json.loads((Path(packaged_checkpoint_path("sora")) / "config.json").read_text())
    assert resolve_model_size("small") == {name: packaged[name] for name in MODEL_SIZES["small"]}
    assert model_sizes(parse()) == MODEL_SIZES["small"]
    assert model_sizes(parse("--model_size", "large")) == dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        decoder_layers=12,
    )
    # a flag replaces one field of the preset, whichever preset
    assert model_sizes(parse("--model_size", "base", "--num_hidden_layers", "6")) == dict(
        hidden_size=768, num_hidden_layers=6, num_attention_heads=12, intermediate_size=3072, decoder_layers=6
    )
    assert model_sizes(parse("--hidden_size", "128"))["hidden_size"] == 128


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model_size", "huge"], "model_size='huge' is not a preset: choose one of small, base, large"),
        (["--model_size", "base", "--num_attention_heads", "5"], "hidden_size 768 is not divisible by"),
        (["--num_hidden_layers", "0"], "--num_hidden_layers must be a positive integer, got 0"),
        (["--model_name_or_path", "sora", "--model_size", "base"], "--model_size size a new model, but"),
        (
            ["--model_name_or_path", "sora", "--hidden_size", "64"],
            "continues a checkpoint with its own sizes",
        ),
        (["--with_decoder", "false", "--decoder_layers", "2"], "--with_decoder false builds none"),
    ],
)
def test_conflicting_or_invalid_size_flags_are_refused(argv, message, tmp_path, capsys):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model_sizes(parse(*argv))
    # the command fails on one line before any corpus or output folder is made
    assert (
        cli_main(["pretrain", "--output_dir", str(tmp_path / "run"), "--corpus_dir", str(tmp_path), *argv])
        == 2
    )
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_non_embedding_parameters_of_each_preset_count_the_layer_weights():
    for name in MODEL_SIZES:
        with torch.device("meta"):
            config = SoraConfig(vocab_size=12000, is_encoder_decoder=True, **resolve_model_size(name))
            model = SoraForPreTraining(config)
        layers = [*model.model.encoder.layers, *model.model.decoder.layers]
        weights = sum(
            module.weight.numel()
            for layer in layers
            for module in layer.modules()
            if isinstance(module, torch.nn.Linear)
        )
        assert non_embedding_parameters(model.config) == weights, name


def test_flops_formula_equals_torch_flop_counter(corpus_and_tokenizer):
    _, corpus, tokenizer = corpus_and_tokenizer
    chunks = prepare_pretraining_dataset(corpus["train"].select(range(40)), tokenizer, max_length=48)

    def counted(model, batch) -> int:
        with FlopCounterMode(display=False) as counter:
            model(**batch).loss.backward()
        return counter.get_total_flops()

    torch.manual_seed(0)
    encoder_only = SoraForPreTraining(tiny_config(tokenizer, is_encoder_decoder=False)).train()
    batch = DataCollatorForSoraPretraining(tokenizer, seed=0, denoising=False)([chunks[i] for i in range(8)])
    assert len(set(batch_lengths(batch)["encoder_lengths"])) > 1  # padded rows: Sora skips the padding
    assert counted(encoder_only, batch) == pretraining_step_flops(encoder_only.config, **batch_lengths(batch))

    seq2seq = SoraForPreTraining(tiny_config(tokenizer, is_encoder_decoder=True)).train()
    collator = DataCollatorForSoraPretraining(tokenizer, seed=0, pad_to_multiple_of=None)
    for index in range(2):  # one row: nothing padded anywhere
        batch = collator([chunks[index]])
        assert counted(seq2seq, batch) == pretraining_step_flops(seq2seq.config, **batch_lengths(batch))
    # padded decoder rows are computed, so the counter (work done) exceeds the model FLOPs (useful work)
    batch = collator([chunks[i] for i in range(8)])
    assert counted(seq2seq, batch) > pretraining_step_flops(seq2seq.config, **batch_lengths(batch))


def test_gradient_checkpointing_gives_the_same_losses_and_gradients(corpus_and_tokenizer, tmp_path):
    _, corpus, tokenizer = corpus_and_tokenizer
    chunks = prepare_pretraining_dataset(corpus["train"].select(range(60)), tokenizer, max_length=48)
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_config(tokenizer, is_encoder_decoder=True)).train()
    batch = DataCollatorForSoraPretraining(tokenizer, seed=0)([chunks[i] for i in range(8)])

    def loss_and_gradients():
        model.zero_grad()
        torch.manual_seed(
            1
        )  # the same dropout masks: checkpointing replays the RNG state in the recomputation
        loss = model(**batch).loss
        loss.backward()
        return loss.detach(), {
            name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None
        }

    loss, gradients = loss_and_gradients()
    model.activation_checkpointing_enable()
    assert any(getattr(layer, "gradient_checkpointing", False) for layer in model.model.decoder.layers)
    checkpointed_loss, checkpointed_gradients = loss_and_gradients()
    assert checkpointed_loss == loss and checkpointed_gradients.keys() == gradients.keys()
    for name, gradient in gradients.items():
        torch.testing.assert_close(checkpointed_gradients[name], gradient, rtol=0, atol=0, msg=name)

    # and through Trainer's flag: the same loss curve
    curves = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        args = TrainingArguments(
            output_dir=str(tmp_path / str(checkpointing)),
            per_device_train_batch_size=8,
            max_steps=3,
            learning_rate=3e-3,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=0,
            remove_unused_columns=False,
            activation_checkpointing=checkpointing,
        )
        trainer = SoraTrainer(
            model=SoraForPreTraining(tiny_config(tokenizer, is_encoder_decoder=True)),
            args=args,
            train_dataset=chunks,
            data_collator=DataCollatorForSoraPretraining(tokenizer),
        )
        trainer.train()
        curves.append([entry["loss"] for entry in trainer.state.log_history if "loss" in entry])
    assert len(curves[0]) == 3 and curves[1] == pytest.approx(curves[0], rel=1e-6)


def chunk_key(example) -> tuple:
    return tuple(tuple(sentence) for sentence in example["sentences"])


def test_the_stream_packs_like_the_saved_path_and_reshuffles_each_pass(corpus_and_tokenizer):
    _, corpus, tokenizer = corpus_and_tokenizer
    documents = corpus["train"].select(range(60))
    packed = Counter(
        chunk_key(row) for row in prepare_pretraining_dataset(documents, tokenizer, max_length=48)
    )
    stream = PretrainingStream(documents, tokenizer, max_length=48, batch_size=4, num_shards=4)
    passes = [[chunk_key(row) for row in stream.pass_dataset(index)] for index in (0, 1)]
    assert (
        Counter(passes[0]) == packed == Counter(passes[1])
    )  # every chunk once per pass, packed the same way
    assert passes[0] != passes[1]  # in another order
    assert all(sum(map(len, chunk)) <= 48 - 3 for chunk in packed)
    # the stream itself runs past the end of a pass into the next
    iterator = iter(stream)
    seen = [chunk_key(next(iterator)) for _ in range(len(passes[0]) + 3)]
    assert seen == passes[0] + passes[1][:3]
    # halves of the shards for two processes: disjoint, and together the whole pass
    halves = [
        [chunk_key(row) for row in PretrainingStream(documents, tokenizer, 48, 4, 4, rank, 2).pass_dataset(0)]
        for rank in (0, 1)
    ]
    assert not set(halves[0]) & set(halves[1]) and Counter(halves[0] + halves[1]) == packed


def test_stream_settings_that_cannot_work_are_refused(corpus_and_tokenizer):
    _, corpus, tokenizer = corpus_and_tokenizer
    with pytest.raises(UserInputError, match="streaming_num_shards=3 is not a multiple of the 2 processes"):
        PretrainingStream(corpus["train"], tokenizer, 48, 4, num_shards=3, rank=0, world_size=2)
    with pytest.raises(
        UserInputError, match="streaming_num_shards=64 is more than the 10 training documents"
    ):
        PretrainingStream(corpus["train"].select(range(10)), tokenizer, 48, 4, num_shards=64)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            [],
            "--streaming has no epochs (passes over the data repeat until training stops): set --max_steps.",
        ),
        (
            ["--max_steps", "3", "--dataloader_num_workers", "2"],
            "--dataloader_num_workers 2: with --streaming",
        ),
        (
            ["--max_steps", "3", "--sentence_teacher", "all-MiniLM-L6-v2"],
            "drop --streaming for a distillation",
        ),
        (
            ["--max_steps", "3", "--train_sampling_strategy", "group_by_length"],
            "--train_sampling_strategy group_by_length needs every chunk's length up front",
        ),
    ],
)
def test_streaming_refuses_what_it_cannot_honour(argv, message, tmp_path, capsys):
    command = ["pretrain", "--output_dir", str(tmp_path / "run"), "--corpus_dir", str(tmp_path / "corpus")]
    assert cli_main([*command, "--streaming", "true", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "corpus").exists()


def test_streaming_pretraining_command_with_a_preset_checkpointing_and_bf16(corpus_and_tokenizer, tmp_path):
    folder, _, tokenizer = corpus_and_tokenizer
    run = tmp_path / "run"
    argv = ["pretrain", "--corpus_dir", str(folder / "corpus"), "--sources", *SOURCES]
    argv += ["--max_docs_per_source", str(MAX_DOCS), "--tokenizer_name_or_path", str(folder / "tokenizer")]
    argv += ["--model_size", "small", *TINY, "--max_length", "48", "--max_eval_samples", "8"]
    argv += ["--streaming", "true", "--streaming_num_shards", "4", "--throughput_warmup_steps", "1"]
    argv += ["--output_dir", str(run), "--per_device_train_batch_size", "4", "--max_steps", "3"]
    argv += ["--save_steps", "2", "--logging_steps", "1", "--report_to", "none", "--use_cpu", "--bf16"]
    argv += ["--activation_checkpointing"]
    assert cli_main(argv) == 0
    summary = json.loads((run / "pretraining_results.json").read_text())
    assert summary["model_shape"] == dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_layers=1,
        vocab_size=len(tokenizer),
    )
    assert summary["steps"] == 3 and summary["train_chunks"] is None
    assert summary["throughput"]["steps"] == 2 and summary["throughput"]["tokens_per_second"] > 0
    assert summary["model_flops_per_token"] > 6 * non_embedding_parameters(
        SoraForPreTraining.from_pretrained(run).config
    )
    assert SoraForPreTraining.from_pretrained(run).config.hidden_size == 32

    # the checkpoint holds the stream position; a resumed run must use the data settings that saved it
    checkpoint = run / "checkpoint-2"
    record = json.loads((checkpoint / STREAM_STATE_FILE).read_text())
    assert record["batches"] == 2 and len(record["positions"]) == 1 and record["batch_size"] == 4
    train = build_corpus(folder / "corpus", sources=SOURCES, max_docs_per_source=MAX_DOCS, verbose=False)[
        "train"
    ]
    other_batch = PretrainingStream(train, tokenizer, max_length=48, batch_size=8, num_shards=4, seed=42)
    with pytest.raises(UserInputError, match=r"other data settings \(batch_size 4 -> 8\)"):
        resume_stream(other_batch, checkpoint, 2)
    same = PretrainingStream(train, tokenizer, max_length=48, batch_size=4, num_shards=4, seed=42)
    with pytest.raises(UserInputError, match="keep --gradient_accumulation_steps"):
        resume_stream(same, checkpoint, 4)
    with pytest.raises(UserInputError, match=f"has no {STREAM_STATE_FILE}"):
        resume_stream(same, run, 2)


def test_two_processes_read_disjoint_shards_and_resume_at_the_exact_chunk(corpus_and_tokenizer, tmp_path):
    folder, _, _ = corpus_and_tokenizer
    accelerate = Path(sys.executable).with_name("accelerate")
    # `--multi_gpu` goes through torchrun; without GPUs accelerate then runs two CPU processes over gloo
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29541"]
    output = tmp_path / "result.json"
    command = [*launch, str(SCRIPT), "--corpus", str(folder / "corpus"), "--sources", *SOURCES]
    command += ["--max-docs-per-source", str(MAX_DOCS), "--tokenizer", str(folder / "tokenizer")]
    command += ["--workdir", str(tmp_path), "--output", str(output)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    record = json.loads(output.read_text())
    batches = record["batches"]
    assert record["world_size"] == 2
    for rank in (0, 1):
        full, cut, resumed = (batches[run][rank] for run in ("full", "cut", "resumed"))
        assert len(full) == 12 and len(cut) == len(resumed) == 6  # 6 steps x 2 accumulated batches
        assert cut + resumed == full  # the resumed run read on from the saved position, nothing twice
    first, second = ({chunk for batch in batches["full"][rank] for chunk in batch} for rank in (0, 1))
    assert first and second and not first & second  # each process its own shards
    losses = record["losses"]
    assert losses["resumed"] == pytest.approx(losses["full"], rel=1e-6)

    state = json.loads((tmp_path / "cut" / "checkpoint-3" / STREAM_STATE_FILE).read_text())
    assert state["batches"] == 6 and state["world_size"] == 2 and len(state["positions"]) == 2
    assert not list(tmp_path.rglob(f"{STREAM_STATE_FILE}.partial"))
    # run_pretraining under the same launch: the main process trained and saved the one tokenizer, wrote the results
    summary = record["summary"]
    assert summary["processes"] == 2 and summary["steps"] == 3
    assert (tmp_path / "run_pretraining" / "tokenizer.json").is_file()
    saved = json.loads((tmp_path / "run_pretraining" / "checkpoint-2" / STREAM_STATE_FILE).read_text())
    assert len(saved["positions"]) == 2 and saved["batches"] == 2
