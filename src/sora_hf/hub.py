"""Share Sora models through the Hugging Face Hub: model cards from Trainer runs, folder push and pull.

Everything goes through `huggingface_hub` (`HfApi`, `snapshot_download`, `ModelCard`); `HF_ENDPOINT` decides
which Hub is used, so the same code talks to huggingface.co or to the local test server.
"""

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from huggingface_hub import (
    CommitInfo,
    CommitOperationAdd,
    CommitOperationDelete,
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
    get_token,
    snapshot_download,
)
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
from huggingface_hub.utils import filter_repo_objects

from .atomic_files import write_folder
from .redaction import find_token

try:  # the transport library of huggingface_hub 2.x (httpx before that)
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    import httpx as _httpx

# Package data (setup.cfg [options.package_data]): a wheel or sdist install has it as well as a checkout.
DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "model_card.md"

# Head class suffix -> (pipeline task, Auto class to load it with).
HEAD_TASKS = {
    "ForSequenceClassification": ("text-classification", "AutoModelForSequenceClassification"),
    "ForTokenClassification": ("token-classification", "AutoModelForTokenClassification"),
    "ForQuestionAnswering": ("question-answering", "AutoModelForQuestionAnswering"),
    "ForConditionalGeneration": ("text2text-generation", "AutoModelForSeq2SeqLM"),
    "ForMaskedLM": ("fill-mask", "AutoModelForMaskedLM"),
    "ForPreTraining": ("fill-mask", "AutoModelForPreTraining"),
}
TASK_AUTO_CLASSES = {task: auto_class for task, auto_class in HEAD_TASKS.values()}
TASK_AUTO_CLASSES.update(translation="AutoModelForSeq2SeqLM", summarization="AutoModelForSeq2SeqLM")

# Trainer log keys that are bookkeeping, not results.
_NOT_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch", "step", "total_flos")
_METRIC_PREFIXES = ("eval_", "test_", "predict_")
# Folders the Hub refuses to store (git internals, huggingface_hub's download bookkeeping).
_SKIPPED_FOLDERS = {".git", ".cache"}
# Distributions whose versions a model card lists.
_CARD_FRAMEWORKS = ("sora_hf", "transformers", "torch", "tokenizers", "datasets", "peft", "huggingface_hub")


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _metric_name(key: str) -> str | None:
    """`eval_accuracy` -> `accuracy`; None for bookkeeping (`eval_runtime`, `epoch`) and training summaries."""
    if key.startswith("train_"):
        return None
    name = key
    for prefix in _METRIC_PREFIXES:
        if key.startswith(prefix):
            name = key[len(prefix) :]
            break
    return None if name in _NOT_METRICS else name


def infer_task(model: Any) -> str | None:
    """Pipeline task of a model from its head class (`SoraForSequenceClassification` -> `text-classification`)."""
    if model is None:
        return None
    if hasattr(model, "get_base_model"):  # a peft model: look at the wrapped transformers model
        model = model.get_base_model()
    names = [type(model).__name__, *(getattr(getattr(model, "config", None), "architectures", None) or [])]
    for name in names:
        for suffix, (task, _) in HEAD_TASKS.items():
            if name.endswith(suffix):
                return task
    return None


def final_eval_metrics(log_history: list[dict]) -> dict[str, float]:
    """The metrics of the last evaluation in a Trainer's `state.log_history` (empty when none ran)."""
    for entry in reversed(log_history):
        if "eval_loss" in entry or any(key.startswith("eval_") for key in entry):
            return {key: value for key, value in entry.items() if key.startswith("eval_")}
    return {}


def eval_results_from_metrics(
    metrics: dict[str, Any],
    *,
    task_type: str,
    dataset_type: str,
    dataset_name: str,
    dataset_config: str | None = None,
    dataset_split: str | None = None,
) -> list[EvalResult]:
    """One model-index `EvalResult` per numeric metric; losses and timings stay out of the index."""
    results = []
    for key, value in metrics.items():
        name = _metric_name(key)
        if name is None or name == "loss" or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        results.append(
            EvalResult(
                task_type=task_type,
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                dataset_config=dataset_config,
                dataset_split=dataset_split,
                metric_type=name,
                metric_name=name,
                metric_value=float(value),
            )
        )
    return results


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown_table(header: list[str], rows: list[list[Any]], align: str | None = None) -> str:
    """A markdown table; `align` gives each column's alignment (l, r or c; default: centred)."""
    rules = {"l": "---", "r": "---:", "c": ":---:"}
    align = align or "c" * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rules[a] for a in align) + "|"]
    lines += ["| " + " | ".join(_format_value(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _epoch(entry: dict) -> str:
    return f"{entry['epoch']:.2f}".rstrip("0").rstrip(".") if "epoch" in entry else ""


def training_results_table(log_history: list[dict]) -> str:
    """A markdown table of a Trainer log: one row per evaluation, or per training log when none ran."""
    eval_entries = [entry for entry in log_history if "eval_loss" in entry]
    if not eval_entries:
        rows = [[e["loss"], _epoch(e), e.get("step", "")] for e in log_history if "loss" in e]
        return markdown_table(["Training Loss", "Epoch", "Step"], rows) if rows else ""
    metric_keys = [key for key in eval_entries[-1] if _metric_name(key) not in (None, "loss")]
    header = [
        "Training Loss",
        "Epoch",
        "Step",
        "Validation Loss",
        *(_metric_name(key) for key in metric_keys),
    ]
    rows, last_train_loss = [], "No log"
    for entry in log_history:
        if "loss" in entry:
            last_train_loss = entry["loss"]
        elif "eval_loss" in entry:
            row = [last_train_loss, _epoch(entry), entry.get("step", ""), entry["eval_loss"]]
            rows.append(row + [entry.get(key, "") for key in metric_keys])
    return markdown_table(header, rows)


def hyperparameters_from_args(args: Any) -> dict[str, Any]:
    """The training hyperparameters worth reporting from a `TrainingArguments`."""
    if args is None:
        return {}
    params: dict[str, Any] = {
        "learning_rate": args.learning_rate,
        "train_batch_size": args.per_device_train_batch_size,
        "eval_batch_size": args.per_device_eval_batch_size,
        "seed": args.seed,
    }
    if args.gradient_accumulation_steps > 1:
        params["gradient_accumulation_steps"] = args.gradient_accumulation_steps
        params["total_train_batch_size"] = (
            args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        )
    params["optimizer"] = str(getattr(args.optim, "value", args.optim))
    params["lr_scheduler_type"] = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    if args.warmup_steps:
        params["warmup_steps"] = args.warmup_steps
    if args.weight_decay:
        params["weight_decay"] = args.weight_decay
    if args.max_steps and args.max_steps > 0:
        params["training_steps"] = args.max_steps
    else:
        params["num_epochs"] = args.num_train_epochs
    if args.bf16 or args.fp16:
        params["mixed_precision_training"] = "bf16" if args.bf16 else "fp16"
    return params


def _card_inputs(
    trainer_or_args: Any, output_dir: str | os.PathLike | None, model: Any, log_history: list[dict] | None
) -> tuple[Any, Any, list[dict], Path]:
    """The TrainingArguments, model, log history and output folder a card describes, from a Trainer or keywords."""
    args = getattr(trainer_or_args, "args", trainer_or_args)
    if args is not None and not hasattr(args, "learning_rate"):
        raise ValueError(
            f"write_model_card got {type(trainer_or_args).__name__} as trainer_or_args: pass a transformers "
            "Trainer, a TrainingArguments, or None with model/log_history/metrics as keywords."
        )
    if hasattr(trainer_or_args, "state"):
        model = model if model is not None else trainer_or_args.model
        log_history = log_history if log_history is not None else trainer_or_args.state.log_history
    output_dir = output_dir if output_dir is not None else getattr(args, "output_dir", None)
    if not output_dir:
        raise ValueError(
            "write_model_card needs an output_dir: pass one, or a Trainer/TrainingArguments that has it."
        )
    return args, model, list(log_history or []), Path(output_dir)


def _template_path(template_path: str | os.PathLike | None) -> Path:
    """The card template to render: `template_path`, else the one shipped with the package."""
    if template_path is None:
        return DEFAULT_TEMPLATE_PATH
    if not Path(template_path).is_file():
        raise ValueError(
            f"No model card template at {template_path}: pass template_path=<a jinja2 markdown file>."
        )
    return Path(template_path)


def _base_model_id(model: Any) -> str | None:
    """The Hub repo id `model` was loaded from; None when it came from a local folder or was built from a config."""
    name_or_path = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    # Only a Hub repo id names a base model; a local folder means nothing to a reader of the card.
    if name_or_path.count("/") == 1 and not Path(name_or_path).exists():
        return name_or_path
    return None


def _model_index(
    metrics: dict[str, Any],
    *,
    explicit: bool,
    task: str | None,
    datasets_: list[str],
    dataset_ids: list[str],
    configs: list[str],
    dataset_split: str | None,
) -> list[EvalResult] | None:
    """The card's model-index results; ValueError when metrics were passed that cannot be indexed."""
    if metrics and (datasets_ or dataset_ids) and task:
        results = eval_results_from_metrics(
            metrics,
            task_type=task,
            dataset_type=(dataset_ids or datasets_)[0],
            dataset_name=(datasets_ or dataset_ids)[0],
            dataset_config=configs[0] if configs else None,
            dataset_split=dataset_split,
        )
        return results or None
    if explicit and metrics and not (datasets_ or dataset_ids):
        raise ValueError(
            "write_model_card got metrics but no dataset: each model-index result names the dataset it was "
            "measured on, so pass dataset=... (and dataset_tags=... for its Hub id)."
        )
    if explicit and metrics:
        raise ValueError(
            "write_model_card got metrics but could not tell the task from the model: pass tasks=..., e.g. "
            "tasks='text-classification'."
        )
    return None


def _card_sections(args: Any, metrics: dict[str, Any], log_history: list[dict]) -> dict[str, Any]:
    """The template's results table, hyperparameters, training log table and framework versions."""
    results_rows = [
        [_metric_name(k), v]
        for k, v in metrics.items()
        if _metric_name(k) and isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return {
        "results_table": markdown_table(["metric", "value"], results_rows) if results_rows else "",
        "hyperparameters": hyperparameters_from_args(args),
        "training_table": training_results_table(log_history),
        "framework_versions": {name: v for name in _CARD_FRAMEWORKS if (v := _version(name)) is not None},
    }


def write_model_card(
    trainer_or_args: Any = None,
    output_dir: str | os.PathLike | None = None,
    *,
    model: Any = None,
    log_history: list[dict] | None = None,
    metrics: dict[str, Any] | None = None,
    model_name: str | None = None,
    repo_id: str | None = None,
    language: str | list[str] | None = None,
    license: str | None = None,
    tags: str | list[str] | None = None,
    finetuned_from: str | None = None,
    tasks: str | list[str] | None = None,
    dataset_tags: str | list[str] | None = None,
    dataset: str | list[str] | None = None,
    dataset_args: str | list[str] | None = None,
    dataset_split: str | None = None,
    model_description: str | None = None,
    limitations: str | None = None,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """Write `README.md` (metadata, model-index results, hyperparameters, training log) for a Trainer run.

    `trainer_or_args` is a `Trainer` (model, `args` and `state.log_history` are read from it) or a
    `TrainingArguments` (pass `model` and `log_history` yourself). `metrics` (e.g. what `trainer.evaluate()`
    returned) go into the model index; without them the last evaluation in the log is used. The keywords from
    `language` to `dataset_args` mean what they mean in `Trainer.create_model_card`, so a Trainer subclass can
    forward its keywords: `write_model_card(self, self.args.output_dir, **kwargs)`. `template_path` defaults to
    the package's own template (`DEFAULT_TEMPLATE_PATH`).
    """
    args, model, log_history, output_dir = _card_inputs(trainer_or_args, output_dir, model, log_history)
    template_path = _template_path(template_path)
    repo_id = repo_id or getattr(args, "hub_model_id", None) or model_name or output_dir.resolve().name
    model_name = model_name or repo_id.split("/")[-1]
    finetuned_from = finetuned_from if finetuned_from is not None else _base_model_id(model)
    task = (_as_list(tasks) or _as_list(infer_task(model)) or [None])[0]
    datasets_, dataset_ids = _as_list(dataset), _as_list(dataset_tags)
    explicit_metrics = metrics is not None
    metrics = dict(metrics) if metrics is not None else final_eval_metrics(log_history)
    eval_results = _model_index(
        metrics,
        explicit=explicit_metrics,
        task=task,
        datasets_=datasets_,
        dataset_ids=dataset_ids,
        configs=_as_list(dataset_args),
        dataset_split=dataset_split,
    )
    trainer_tag = ["generated_from_trainer"] if log_history else []
    card_data = ModelCardData(
        language=language,
        license=license or "apache-2.0",
        library_name="peft" if hasattr(model, "peft_config") else "transformers",
        tags=list(dict.fromkeys(["sora", "sora_hf", *_as_list(tags), *trainer_tag])),
        base_model=finetuned_from,
        datasets=(dataset_ids or datasets_) or None,
        pipeline_tag=task,
        model_name=model_name,
        eval_results=eval_results,
    )
    dataset_names = ", ".join(datasets_ or dataset_ids)
    card = ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        repo_id=repo_id,
        model_description=model_description,
        limitations=limitations,
        base_model=finetuned_from,
        dataset_names=dataset_names,
        auto_class=TASK_AUTO_CLASSES.get(task, "AutoModel"),
        eval_dataset=f"the {dataset_split} split of {dataset_names}" if dataset_split else dataset_names,
        **_card_sections(args, metrics, log_history),
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    card.save(output_dir / "README.md")
    return card


# ---- push and pull ------------------------------------------------------------------------------------


def resolve_token(token: str | None) -> str:
    """The token to write with: `token`, else `HF_TOKEN`, else the one saved by `hf auth login`."""
    token = token or get_token()
    if not token:
        raise ValueError(
            "No Hugging Face token: pushing needs a token with write access. Pass --token/token=..., set "
            "HF_TOKEN, or run `hf auth login`."
        )
    return token


def check_token(api: HfApi, token: str) -> str:
    """Ask the Hub who owns `token`; a clear ValueError when the Hub rejects it."""
    try:
        return api.whoami(token=token)["name"]
    except HfHubHTTPError as err:
        if err.response is not None and err.response.status_code == 401:
            raise ValueError(
                f"The Hub at {api.endpoint} rejected the token (401 Unauthorized): it is invalid or revoked. "
                "Create a new token with write access and pass it with --token or HF_TOKEN."
            ) from err
        raise


def _connection_error(
    action: str, repo_id: str, endpoint: str, err: Exception, advice: str
) -> ConnectionError:
    return ConnectionError(
        f"Lost the connection to the Hub at {endpoint} while {action} {repo_id!r} ({err!r}). {advice}"
    )


# What `push` sends by default: the model (and adapter), tokenizer/processor files, card, plots and results.
# Patterns are huggingface_hub's (`upload_folder`'s allow_patterns/ignore_patterns): fnmatch, `*` crosses `/`.
PUSH_ALLOW_PATTERNS = (
    "*.safetensors",  # weights: model.safetensors, adapter_model.safetensors, adapter/...
    "*.json",  # config, generation/adapter/tokenizer/processor configs, modules.json, *_results.json
    "*.txt",  # merges.txt, vocab.txt
    "*.model",  # sentencepiece tokenizers
    "*.bpe",
    "*.tiktoken",
    "*.jinja",  # chat templates
    "*.md",  # README.md (the model card)
    "*.png",  # plots
    "*.jpg",
    "*.jpeg",
    "*.svg",
)
PUSH_IGNORE_PATTERNS = (
    "checkpoint-*/*",  # Trainer checkpoints: the weights again, plus optimizer and scheduler state
    "*/checkpoint-*/*",
    "runs/*",  # TensorBoard event logs (the Trainer's default logging_dir)
    "*/runs/*",
    "*tfevents*",
    "wandb/*",
    "*/wandb/*",
    "mlruns/*",
    "*/mlruns/*",
    "trainer_state.json",
    "*/trainer_state.json",
    "*.bin",  # pickles (training_args.bin, optimizer state): loading one runs code
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    ".*",  # hidden files and folders (.env, .ipynb_checkpoints)
    "*/.*",
)
# Text files searched for Hugging Face tokens before anything is sent.
TOKEN_CHECKED_SUFFIXES = frozenset(
    ".md .json .jsonl .txt .yaml .yml .csv .tsv .jinja .py .cfg .toml .log".split()
)


@dataclass
class PushPlan:
    """What `push_folder` sends from `folder`: `files` (relative POSIX paths, sorted) and the files it leaves out."""

    folder: Path
    files: list[str]
    left_out: list[str]


def _is_inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _walk_folder(root: Path) -> tuple[list[str], list[str], list[str]]:
    """Files under `root`, and the file and folder symlinks under it that lead outside it (relative paths)."""
    files, outside_files, outside_folders = [], [], []
    # followlinks=False: a linked folder is never entered (one inside `root` is reached under its real path).
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(name for name in dirnames if name not in _SKIPPED_FOLDERS)
        for name in dirnames:
            if (here / name).is_symlink() and not _is_inside(here / name, root):
                outside_folders.append((here / name).relative_to(root).as_posix())
        for name in filenames:
            path = here / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() and not _is_inside(path, root):
                outside_files.append(relative)
            elif path.is_file():  # also drops broken links, sockets and fifos
                files.append(relative)
    return files, outside_files, outside_folders


def _select(paths: Sequence[str], include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The default set plus what `include` matches, less what `exclude` matches."""
    chosen = set(
        filter_repo_objects(paths, allow_patterns=PUSH_ALLOW_PATTERNS, ignore_patterns=PUSH_IGNORE_PATTERNS)
    )
    if include:
        chosen.update(filter_repo_objects(paths, allow_patterns=list(include)))
    return sorted(filter_repo_objects(chosen, ignore_patterns=list(exclude)))


def _check_no_tokens(folder: Path, files: Sequence[str]) -> None:
    found = []
    for relative in files:
        if Path(relative).suffix.lower() not in TOKEN_CHECKED_SUFFIXES:
            continue
        with open(folder / relative, encoding="utf-8", errors="replace") as text:
            line = next((number for number, content in enumerate(text, 1) if find_token(content)), None)
        if line is not None:
            found.append(f"{relative} (line {line})")
    if found:
        raise ValueError(
            f"Refusing to push {folder}: {', '.join(found)} contain{'s' if len(found) == 1 else ''} a string that "
            "looks like a Hugging Face token (hf_...). Remove it (sora_hf.redaction.redact_text replaces tokens) "
            "or leave the file out with --exclude PATTERN; then revoke the token if it was ever shared."
        )


def plan_push(
    folder: str | os.PathLike, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> PushPlan:
    """The files of `folder` a push sends: the default set, plus `include` matches, less `exclude` matches.

    The default set is every file matching `PUSH_ALLOW_PATTERNS` and no `PUSH_IGNORE_PATTERNS`: the model,
    adapter, tokenizer/processor files, card, plots and results, without Trainer checkpoints, optimizer state,
    pickles or logs. A file an `include` pattern matches is sent even if a default ignore pattern matches it
    (`include=["*"]` sends everything); `exclude` wins over both. Symlinks are never followed out of `folder`:
    a link leading outside that would be sent raises ValueError, as does a text file holding an `hf_` token.
    """
    folder = Path(folder)
    root = folder.resolve()
    if not root.is_dir():
        raise ValueError(
            f"--folder {folder} is not a folder with files in it: pass the folder save_pretrained wrote."
        )
    include, exclude = _as_list(include), _as_list(exclude)
    all_files, outside_files, outside_folders = _walk_folder(root)
    # a linked folder counts as sent when its path with a trailing slash is (`--exclude data` also drops `data`)
    escaping = _select(outside_files, include, exclude) + [
        name
        for name in outside_folders
        if _select([name + "/"], include, exclude)
        and list(filter_repo_objects([name], ignore_patterns=exclude))
    ]
    if escaping:
        links = ", ".join(f"{name} -> {os.path.realpath(root / name)}" for name in sorted(escaping))
        raise ValueError(
            f"Refusing to push {folder}: symlinks lead outside it ({links}). A push never follows links out of "
            "the folder: copy what you mean to share into it (cp -L), or leave the links out with --exclude."
        )
    if not all_files:
        raise ValueError(
            f"--folder {folder} is not a folder with files in it: pass the folder save_pretrained wrote."
        )
    files = _select(all_files, include, exclude)
    if not files:
        raise ValueError(
            f"None of the {len(all_files)} files in {folder} is selected for the push: add them with "
            "--include PATTERN (--include '*' pushes everything)."
        )
    _check_no_tokens(root, files)
    return PushPlan(folder=folder, files=files, left_out=sorted(set(all_files) - set(files)))


def push_folder(
    folder: str | os.PathLike | PushPlan,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    create: bool = True,
    endpoint: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    delete_stale: bool = False,
) -> CommitInfo:
    """Upload the files `plan_push` selects from `folder` to `repo_id` in one commit (creating the repo/branch).

    `delete_stale` also deletes, in the same commit, the repo's shareable files (the default set's patterns) that
    the folder no longer has, so the repo mirrors the run: e.g. the LoRA adapter files an in-training push put at
    the root, once the merged model is pushed in their place.

    By default that is the model, tokenizer, card, plots and results, never checkpoints, optimizer state, pickles
    or logs; `include`/`exclude` (fnmatch patterns) add to and remove from that set. One `create_commit` call
    carries every file, and the Hub applies a commit whole or not at all: after a lost connection nothing
    half-written is on the Hub and the same call can be repeated. (`upload_folder` in huggingface_hub 2.x may
    split a folder into several commits and retries the commit call by itself.) The local folder is only read.
    `folder` may be the `PushPlan` that `plan_push` returned (e.g. after showing it), which is then sent as is.
    """
    if isinstance(folder, PushPlan):
        if include or exclude:
            raise ValueError(
                "push_folder got a PushPlan and include/exclude: pass them to plan_push instead."
            )
        plan = folder
    else:
        plan = plan_push(folder, include=include, exclude=exclude)
    root = plan.folder.resolve()
    token = resolve_token(token)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        check_token(api, token)
        if create:
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        else:
            api.repo_info(repo_id)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        # the resolved path: a link inside the folder is sent with the content of its (checked) target
        operations = [
            CommitOperationAdd(path_in_repo=relative, path_or_fileobj=(root / relative).resolve())
            for relative in plan.files
        ]
        if delete_stale:
            remote = api.list_repo_files(repo_id, revision=revision)
            shareable = filter_repo_objects(
                remote, allow_patterns=PUSH_ALLOW_PATTERNS, ignore_patterns=PUSH_IGNORE_PATTERNS
            )
            stale = sorted(set(shareable) - set(plan.files))
            operations += [CommitOperationDelete(path_in_repo=path) for path in stale]
        return api.create_commit(
            repo_id=repo_id,
            operations=operations,
            revision=revision,
            commit_message=commit_message or f"Upload {plan.folder.name} with sora-hf",
        )
    except RepositoryNotFoundError as err:
        err.append_to_message(f"\nThe repo {repo_id!r} does not exist, or this token cannot see it.")
        raise
    except _httpx.TransportError as err:
        raise _connection_error(
            "pushing to",
            repo_id,
            api.endpoint,
            err,
            "Commits land whole or not at all, so nothing half-written is on the Hub; run the same push again.",
        ) from err


def pull_repo(
    repo_id: str,
    local_dir: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    max_workers: int = 8,
) -> Path:
    """Download every file of `repo_id` at `revision` into `local_dir`, which appears only once complete."""
    local_dir = Path(local_dir)
    if local_dir.exists() and (not local_dir.is_dir() or any(local_dir.iterdir())):
        raise ValueError(
            f"--local-dir {local_dir} already exists and is not empty: pass a new or empty folder."
        )

    # Download next to the target and rename at the end: a failed pull leaves nothing at `local_dir`, and of two
    # pulls into one folder the second is refused.
    def download(staging: Path) -> None:
        snapshot_download(
            repo_id,
            revision=revision,
            local_dir=staging,
            token=token,
            endpoint=endpoint,
            max_workers=max_workers,
        )
        shutil.rmtree(staging / ".cache", ignore_errors=True)  # download bookkeeping, not repo content

    try:
        write_folder(local_dir, download, marker=None)
    except RepositoryNotFoundError as err:
        err.append_to_message(f"\nThe repo {repo_id!r} does not exist, or this token cannot see it.")
        raise
    except (_httpx.TransportError, LocalEntryNotFoundError) as err:
        raise _connection_error(
            "pulling",
            repo_id,
            endpoint or HfApi().endpoint,
            err,
            f"Nothing was written to {local_dir}; run the same pull again.",
        ) from err
    return local_dir
