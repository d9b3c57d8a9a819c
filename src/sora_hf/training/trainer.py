"""`SoraTrainer`: transformers' `Trainer` with composed extra loss terms, Sora's model cards and loss plots."""

import os
from collections import defaultdict
from contextlib import contextmanager
from functools import partial

import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file, save_file
from transformers import Seq2SeqTrainer, Trainer, TrainerCallback

from ..embedding_perturbation import input_embeddings
from ..hub import push_folder, write_model_card
from ..precision import check_training_bf16
from .distributed import (
    LOSS_TERMS_MODULE,
    check_launch,
    destroy_process_group_at_exit,
    enable_fsdp_on_cpu,
    keep_present_layer_classes,
    shard_tied_embeddings,
)
from .losses import LossInputs, TrainingLoss, build_loss_terms
from .losses.base import loss_with_gradients
from .losses.teacher import prepare_teacher
from .plots import LossCurveCallback

# the loss terms' own parameters in a checkpoint, when they train outside the model (one process, DDP)
LOSS_TERMS_FILE = "loss_terms.safetensors"


class ClearLossTermGradients(TrainerCallback):
    """Clear the loss terms' gradients after each optimizer step: Trainer clears only the model's, and the terms (a
    hidden-state projection, say) train outside it with one process or DDP."""

    def __init__(self, loss_terms: torch.nn.Module):
        self.loss_terms = loss_terms

    def on_step_end(self, args, state, control, **kwargs):
        self.loss_terms.zero_grad(set_to_none=True)


def sharded_engine(accelerator) -> bool:
    """Whether FSDP or DeepSpeed owns the parameters (sharded, reduced and stepped by the engine)."""
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


class SoraTrainer(Trainer):
    """A `Trainer` that adds extra loss terms (adversarial, distillation) to the task loss, writes Sora model
    cards and plots its loss curve.

    The terms come from `loss_terms`, or else from the `SoraTrainingArguments` fields; each is logged on its own
    (mean since the last log) under `loss_<name>`.
    """

    def __init__(self, *args, loss_terms: list[TrainingLoss] | None = None, teacher_model=None, **kwargs):
        check_training_bf16(args[1] if len(args) > 1 else kwargs.get("args"))  # emulated bf16 on CPU -> fp32
        super().__init__(*args, **kwargs)
        # frozen, on the device through accelerate, not DDP-wrapped, never in the optimizer
        self.teacher_model = prepare_teacher(self.accelerator, self.args, teacher_model)
        if loss_terms is None:
            loss_terms = build_loss_terms(self.args, self.model, self.teacher_model)
        self.loss_terms = torch.nn.ModuleList(loss_terms).to(self.args.device)
        adversarial = [term.name for term in self.loss_terms if term.needs_embedding_grad]
        if adversarial and self.is_deepspeed_enabled:
            raise ValueError(
                f"adversarial_method={adversarial[0]!r} under DeepSpeed: the perturbation starts from the gradient at "
                "the input embeddings, an extra backward that DeepSpeed's engine takes for a training backward "
                "(ZeRO-2 then fails with IndexError in stage_1_and_2.reduce_ipg_grads, ZeRO-3 silently steps with "
                "wrong gradients). Train adversarially with the FSDP config (examples/accelerate/fsdp.yaml) or DDP "
                "(ddp.yaml)."
            )
        self._terms_in_model = False
        if any(parameter.requires_grad for parameter in self.loss_terms.parameters()):
            if sharded_engine(self.accelerator):
                # FSDP and DeepSpeed shard, reduce, save and resume only what the model holds: the terms' own
                # parameters (a projection) join it for training and leave it before the model is saved
                self.model.add_module(LOSS_TERMS_MODULE, self.loss_terms)
                self._terms_in_model = True
            else:
                self.add_callback(ClearLossTermGradients(self.loss_terms))
        if self.is_fsdp_enabled:
            keep_present_layer_classes(self.accelerator, self.model)
        self._term_sums: dict[str, float] = defaultdict(float)
        self._term_counts: dict[str, int] = defaultdict(int)
        self._run_sums: dict[str, float] = defaultdict(float)  # over every step this process ran
        self._run_counts: dict[str, int] = defaultdict(int)
        if not any(isinstance(callback, LossCurveCallback) for callback in self.callback_handler.callbacks):
            self.add_callback(LossCurveCallback())

    def create_accelerator_and_postprocess(self) -> None:
        """Trainer's accelerator; CPU processes honour an FSDP launch config, and launches that would silently train
        something else than the config says are refused (`sora_hf.training.distributed`)."""
        super().create_accelerator_and_postprocess()
        if enable_fsdp_on_cpu(self.accelerator, self.args):
            self.is_fsdp_enabled = True
            if (
                self.accelerator.state.fsdp_plugin.activation_checkpointing
                and self.args.activation_checkpointing
            ):
                raise ValueError(
                    "activation_checkpointing: FSDP's own (fsdp_activation_checkpointing) is on as well; use one."
                )
        check_launch(self.accelerator, self.args)
        if self.accelerator.num_processes > 1:
            destroy_process_group_at_exit()

    def _outside_term_parameters(self) -> list[torch.nn.Parameter]:
        """The loss terms' trained parameters when they live outside the model (one process, DDP), else none."""
        if self._terms_in_model:
            return []
        return [p for p in self.loss_terms.parameters() if p.requires_grad]

    def training_step(self, model, inputs, num_items_in_batch=None):
        """Trainer's step; at the end of an accumulation window, the loss terms' gradients are averaged over the
        processes the way DDP averages the model's (before clipping and the optimizer step see them)."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.sync_gradients and self.accelerator.num_processes > 1:
            for parameter in self._outside_term_parameters():
                if parameter.grad is None:  # every process must join every all-reduce
                    parameter.grad = torch.zeros_like(parameter)
                parameter.grad.copy_(self.accelerator.reduce(parameter.grad, reduction="mean"))
        return loss

    def _clip_grad_norm(self, model):
        """Trainer's clipping, over the loss terms' own parameters too: one global norm, as under FSDP and
        DeepSpeed, where they sit inside the model."""
        terms = self._outside_term_parameters()
        if not terms:
            return super()._clip_grad_norm(model)
        return self.accelerator.clip_grad_norm_([*model.parameters(), *terms], self.args.max_grad_norm)

    def _get_grad_norm(self, model, grad_norm=None):
        terms = self._outside_term_parameters()
        if grad_norm is None and terms:
            grad_norm = self.accelerator.clip_grad_norm_([*model.parameters(), *terms], float("inf"))
        return super()._get_grad_norm(model, grad_norm)

    def create_optimizer(self, model=None):
        """The usual optimizer, plus a parameter group for loss terms that own parameters (projections)."""
        if self.is_fsdp_enabled and self.accelerator.is_fsdp2 and model is None:
            # FSDP2 builds the optimizer before accelerate shards the model: the tied embeddings are grouped first
            shard_tied_embeddings(self.accelerator, self.model)
        optimizer = super().create_optimizer(model)
        term_parameters = [p for p in self.loss_terms.parameters() if p.requires_grad]
        if term_parameters and not self._terms_in_model:  # inside the model, they are in its groups already
            optimizer.add_param_group({"params": term_parameters, "weight_decay": 0.0})
        return optimizer

    @contextmanager
    def _capture_embedding_output(self, model):
        """Keep the input-embedding output of the forward, made differentiable even when embeddings are frozen."""
        captured: dict[str, torch.Tensor] = {}

        def hook(module, args, output):
            if "output" in captured:  # an embedding shared with the decoder (BART): keep the encoder's call
                return output
            if not output.requires_grad:
                output = output.detach().requires_grad_(True)
            captured["output"] = output
            return output

        handle = input_embeddings(model).register_forward_hook(hook)
        try:
            yield captured
        finally:
            handle.remove()

    def _check_checkpointing(self, model) -> None:
        """Reentrant checkpointing runs its own backward inside `torch.autograd.grad`: refuse it up front."""
        for module in self.accelerator.unwrap_model(model).modules():
            checkpoint = getattr(module, "_gradient_checkpointing_func", None)
            if getattr(module, "gradient_checkpointing", False) and getattr(checkpoint, "keywords", {}).get(
                "use_reentrant", False
            ):
                raise ValueError(
                    "activation_checkpointing_kwargs (gradient_checkpointing_kwargs): use_reentrant=True cannot "
                    "take the embedding gradient the adversarial terms need (reentrant checkpointing ignores "
                    "torch.autograd.grad's inputs). Pass {'use_reentrant': False}, the transformers default."
                )

    def _model_loss(self, model, inputs, num_items_in_batch=None):
        """`Trainer.compute_loss` on a copy of `inputs` (label smoothing pops the labels from the dict it gets)."""
        return super().compute_loss(model, dict(inputs), False, num_items_in_batch)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Task loss from `Trainer`, plus every active extra term while training."""
        extras = {
            key: inputs.pop(key) for term in self.loss_terms for key in term.batch_keys if key in inputs
        }
        terms = [t for t in self.loss_terms if t.is_active(self.state.global_step)] if model.training else []
        if not terms:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        for term in terms:
            inputs.update(term.model_kwargs())
        needs_grad = any(term.needs_embedding_grad for term in terms)
        if needs_grad:
            self._check_checkpointing(model)
        captured: dict[str, torch.Tensor] = {}
        if needs_grad or any(term.needs_embedding_output for term in terms):
            with self._capture_embedding_output(model) as captured:
                task_loss, outputs = super().compute_loss(model, dict(inputs), True, num_items_in_batch)
        else:
            task_loss, outputs = super().compute_loss(model, dict(inputs), True, num_items_in_batch)
        scale = 1.0
        for term in terms:
            scale *= term.task_loss_scale
        embedding_grad = None
        precompute = not sharded_engine(self.accelerator)
        if needs_grad:
            if "output" not in captured:
                raise ValueError(
                    f"{type(model).__name__} did not call its input embeddings in the forward (inputs_embeds "
                    "given?): the adversarial terms perturb their output, so pass input_ids."
                )
        if needs_grad and not precompute:
            # FSDP and DeepSpeed parameters get gradients only in the engine's backward (FSDP2 shards are not leaves
            # of this graph): take the embedding gradient alone and keep the clean graph for that backward.
            (embedding_grad,) = torch.autograd.grad(
                task_loss, captured["output"], retain_graph=True, allow_unused=True
            )
            if embedding_grad is None:
                embedding_grad = torch.zeros_like(captured["output"])
            loss = scale * task_loss
        elif needs_grad:
            # One backward over the clean graph gives both the embedding gradient the perturbations start from and
            # the task loss's parameter gradients; `loss_with_gradients` hands the latter to the trainer's backward.
            parameters = [p for p in model.parameters() if p.requires_grad]
            gradients = torch.autograd.grad(
                task_loss,
                [captured["output"], *parameters],
                retain_graph=not all(term.needs_embedding_grad for term in terms),
                allow_unused=True,
            )
            embedding_grad = gradients[0]
            if embedding_grad is None:
                embedding_grad = torch.zeros_like(captured["output"])
            scaled = [None if g is None else g * scale for g in gradients[1:]]
            loss = loss_with_gradients(scale * task_loss.detach(), parameters, scaled)
        else:
            loss = scale * task_loss
        loss_inputs = LossInputs(
            model=model,
            inputs=inputs,
            outputs=outputs,
            task_loss=task_loss,
            embedding_output=captured.get("output"),
            batch_extras=extras,
            num_items_in_batch=num_items_in_batch,
            embedding_grad=embedding_grad,
            compute_loss=partial(self._model_loss, model, num_items_in_batch=num_items_in_batch),
            global_step=self.state.global_step,
            precompute_gradients=precompute,
        )
        for term in terms:
            value = term(loss_inputs)
            for sums, counts in ((self._term_sums, self._term_counts), (self._run_sums, self._run_counts)):
                sums[term.name] += float(value.detach())
                counts[term.name] += 1
            loss = loss + term.weight * value
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval") -> dict[str, float]:
        """`Trainer.evaluate`, plus the robustness metrics `args.robustness_attacks` asks for."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(dataset, str):  # Trainer names one of several eval datasets
            dataset = self.eval_dataset[dataset]
        with self._robustness_on(None if isinstance(dataset, dict) else dataset):
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        """`Trainer.predict`, plus the robustness metrics `args.robustness_attacks` asks for."""
        with self._robustness_on(test_dataset):
            return super().predict(test_dataset, ignore_keys, metric_key_prefix)

    @contextmanager
    def _robustness_on(self, dataset):
        """Let the evaluation loop attack `dataset` (the loop itself only sees the tokenized columns)."""
        self._robustness_dataset = dataset if getattr(self.args, "robustness_attacks", None) else None
        try:
            yield
        finally:
            self._robustness_dataset = None

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        output = super().evaluation_loop(
            dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
        )
        if getattr(self, "_robustness_dataset", None) is not None:
            robustness = self.robustness_metrics(self._robustness_dataset)
            output.metrics.update({f"{metric_key_prefix}_{key}": value for key, value in robustness.items()})
        return output

    def robustness_metrics(self, dataset) -> dict[str, float]:
        """The `sora_hf.robustness` attacks of `args` on a fixed sample (seed 0) of `robustness_max_samples` texts.

        Every process attacks the same texts (the attacks are not sharded), so all of them report the same numbers.
        """
        from ..robustness import robustness_metrics

        args = self.args
        if self.processing_class is None or not callable(self.processing_class):
            raise ValueError(
                "processing_class: the robustness attacks tokenize raw text, so pass the tokenizer to SoraTrainer."
            )
        columns = getattr(dataset, "column_names", None) or []
        if args.robustness_text_column not in columns:
            raise ValueError(
                f"robustness_text_column: the evaluated dataset has no column {args.robustness_text_column!r} "
                f"(columns: {columns}); keep the raw text next to the tokenized features (Trainer drops it before "
                "the model) or name the right column."
            )
        label_column = next((name for name in ("label", "labels") if name in columns), None)
        if label_column is None:
            raise ValueError(
                f"The evaluated dataset has no 'label' or 'labels' column to attack (columns: {columns})."
            )
        subset = dataset
        if args.robustness_max_samples is not None and args.robustness_max_samples < len(dataset):
            # a random sample, the same for every model: a split may be ordered (by label, say)
            subset = dataset.shuffle(seed=0).select(range(args.robustness_max_samples))
        return robustness_metrics(
            self.model,
            self.processing_class,
            subset[args.robustness_text_column],
            subset[label_column],
            attacks=args.robustness_attacks,
            epsilon=args.robustness_epsilon,
            steps=args.robustness_steps,
            norm=args.robustness_norm,
            max_edit_ratio=args.robustness_max_edit_ratio,
            batch_size=args.per_device_eval_batch_size,
            max_length=args.robustness_max_length,
        )

    def _global_sums(self, sums: dict[str, float], counts: dict[str, int]) -> dict[str, tuple[float, int]]:
        """`{name: (sum, count)}` over every process (a collective: every process calls it at the same point)."""
        names = sorted({term.name for term in self.loss_terms})
        if not names:
            return {}
        local = torch.tensor(
            [[sums.get(n, 0.0) for n in names], [counts.get(n, 0) for n in names]], dtype=torch.float64
        )
        if self.accelerator.num_processes > 1:
            local = self.accelerator.reduce(local.to(self.args.device), reduction="sum").cpu()
        return {
            name: (local[0, i].item(), int(local[1, i].item()))
            for i, name in enumerate(names)
            if local[1, i] > 0
        }

    def train(self, *args, **kwargs):
        """`Trainer.train`; afterwards `loss_term_means` holds the means over every process's steps."""
        output = super().train(*args, **kwargs)
        totals = self._global_sums(self._run_sums, self._run_counts)
        self._run_means = {f"loss_{name}": total / count for name, (total, count) in totals.items()}
        return output

    def loss_term_means(self) -> dict[str, float]:
        """Each extra term's mean over the training steps of the last `train()` (all processes), as `loss_<name>`."""
        return dict(getattr(self, "_run_means", {}))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add each extra term's mean since the last log, over all processes, to the training logs (like `loss`)."""
        if "loss" in logs:
            for name, (total, count) in self._global_sums(self._term_sums, self._term_counts).items():
                logs[f"loss_{name}"] = total / count
            self._term_sums.clear()
            self._term_counts.clear()
        super().log(logs, start_time)

    def get_decay_parameter_names(self, model) -> list[str]:
        """Trainer's weight-decay names, without the loss terms' parameters (they train without decay)."""
        return [
            n for n in super().get_decay_parameter_names(model) if not n.startswith(f"{LOSS_TERMS_MODULE}.")
        ]

    def _save_checkpoint(self, model, trial) -> None:
        self._saving_checkpoint = True  # save_model: FSDP's shards come with the optimizer state (see there)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._saving_checkpoint = False

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """`Trainer.save_model`, plus the loss terms' own parameters in checkpoints (`loss_terms.safetensors`, so a
        resumed run continues with them). Under FSDP's sharded state dict, where Trainer writes no weights here, a
        checkpoint gets its config and tokenizer beside the shards Trainer writes (`sora-hf merge-fsdp-checkpoint`
        makes it a model folder), and any other save gathers the full weights once into `model.safetensors`."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        plugin = getattr(self.accelerator.state, "fsdp_plugin", None)
        sharded = self.is_fsdp_enabled and "SHARDED" in str(plugin.state_dict_type)
        checkpoint = getattr(self, "_saving_checkpoint", False)
        if not checkpoint and os.path.abspath(output_dir) == os.path.abspath(self.args.output_dir):
            self._saved_at_step = self.state.global_step  # push_to_hub need not gather the weights again
        if not sharded:
            super().save_model(output_dir, _internal_call)
        elif checkpoint:
            if self.args.should_save:
                os.makedirs(output_dir, exist_ok=True)
                self.accelerator.unwrap_model(self.model).config.save_pretrained(output_dir)
                if self.processing_class is not None:
                    self.processing_class.save_pretrained(output_dir)
        else:
            state_dict = self.accelerator.get_state_dict(self.model)  # a gather: every process calls it
            self._save(output_dir, state_dict=state_dict)
            if self.args.push_to_hub and not _internal_call:
                self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)
        term_parameters = {name: p for name, p in self.loss_terms.named_parameters() if p.requires_grad}
        if checkpoint and term_parameters and not self._terms_in_model and self.args.should_save:
            # before trainer_state.json, which Trainer writes last: a checkpoint that has it has this file too
            tensors = {name: p.detach().cpu().contiguous() for name, p in term_parameters.items()}
            save_file(tensors, os.path.join(output_dir, LOSS_TERMS_FILE))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        """`Trainer._load_from_checkpoint`, plus the loss terms' own parameters saved beside the model."""
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, LOSS_TERMS_FILE)
        if model is None and not self._terms_in_model and os.path.isfile(path):
            missing, unexpected = self.loss_terms.load_state_dict(load_file(path), strict=False)
            trained = {name for name, p in self.loss_terms.named_parameters() if p.requires_grad}
            if unexpected or trained & set(missing):
                raise ValueError(
                    f"resume_from_checkpoint: {path} holds loss-term parameters {sorted(unexpected)} but this run's "
                    f"terms need {sorted(trained)}: resume with the distillation settings of that run."
                )

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """`Trainer._save`, leaving out the loss terms' parameters when they joined the model (FSDP, DeepSpeed)."""
        if self._terms_in_model and self.args.should_save:
            if state_dict is None:
                state_dict = self.accelerator.unwrap_model(self.model).state_dict()
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith(f"{LOSS_TERMS_MODULE}.")}
        super()._save(output_dir, state_dict)

    def create_model_card(self, **kwargs) -> None:
        """Write README.md (with model-index results) to `output_dir`; `push_to_hub` uploads it."""
        if self.is_world_process_zero():
            write_model_card(self, self.args.output_dir, **kwargs)
            self._card_written = True

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        **card_kwargs,
    ):
        """Save, keep the card already written (or write one from `card_kwargs`), then upload what `sora-hf push`
        shares by default (model, tokenizer/processor, card, plots, results): never checkpoints, optimizer state,
        `training_args.bin` or event logs. Only the main process uploads."""
        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None:
            self.init_hf_repo(token=token)
        # under FSDP and DeepSpeed saving gathers the weights, a collective: when every process saved them at this
        # step already (run_task does, then pushes from the main process alone), they are not saved again
        saved = getattr(self, "_saved_at_step", None) == self.state.global_step
        if not (saved and sharded_engine(self.accelerator)):
            self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        card_kwargs.pop("model_name", None)
        if card_kwargs or not getattr(self, "_card_written", False):
            self.create_model_card(**card_kwargs)
        self._finish_current_push()
        return push_folder(
            self.args.output_dir,
            self.hub_model_id,
            token=token,
            revision=revision if revision is not None else self.args.hub_revision,
            commit_message=commit_message,
            delete_stale=True,  # the repo mirrors the run: no adapter left from an in-training push
        )

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """At each save (`hub_strategy="every_save"`), push the model as `push_to_hub` does: not the checkpoint's
        optimizer state, RNG states or `training_args.bin`. The checkpoint strategies keep Trainer's behaviour
        (they exist to push resumable checkpoints)."""
        if self.args.hub_strategy != "every_save":
            return super()._push_from_checkpoint(checkpoint_folder)
        if not self.is_world_process_zero():
            return None
        push_folder(
            checkpoint_folder,
            self.hub_model_id,
            token=self.args.hub_token,
            revision=self.args.hub_revision,
            commit_message=f"Training in progress, step {self.state.global_step}",
        )
        return None


class SoraSeq2SeqTrainer(SoraTrainer, Seq2SeqTrainer):
    """`SoraTrainer` (extra loss terms, cards, loss curve, push) with `Seq2SeqTrainer`'s generation in evaluation."""
