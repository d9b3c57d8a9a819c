"""`SoraTrainer`: transformers' `Trainer` with composed extra loss terms, Sora's model cards and loss plots."""

from collections import defaultdict
from contextlib import contextmanager
from functools import partial

import torch
from transformers import Seq2SeqTrainer, Trainer, TrainerCallback

from ..embedding_perturbation import input_embeddings
from ..hub import push_folder, write_model_card
from .losses import LossInputs, TrainingLoss, build_loss_terms
from .losses.base import loss_with_gradients
from .losses.teacher import prepare_teacher
from .plots import LossCurveCallback


class LossTermGradientSync(TrainerCallback):
    """Average the loss terms' gradients over processes before each optimizer step.

    The terms (a hidden-state projection, say) live outside the DDP-wrapped model, so DDP does not reduce them.
    """

    def __init__(self, loss_terms: torch.nn.Module, accelerator):
        self.loss_terms = loss_terms
        self.accelerator = accelerator

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.accelerator.num_processes == 1:
            return
        for parameter in self.loss_terms.parameters():
            if not parameter.requires_grad:
                continue
            if parameter.grad is None:  # every process must join every all-reduce
                parameter.grad = torch.zeros_like(parameter)
            parameter.grad.copy_(self.accelerator.reduce(parameter.grad, reduction="mean"))


class SoraTrainer(Trainer):
    """A `Trainer` that adds extra loss terms (adversarial, distillation) to the task loss, writes Sora model
    cards and plots its loss curve.

    The terms come from `loss_terms`, or else from the `SoraTrainingArguments` fields; each is logged on its own
    (mean since the last log) under `loss_<name>`.
    """

    def __init__(self, *args, loss_terms: list[TrainingLoss] | None = None, teacher_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        # frozen, on the device through accelerate, not DDP-wrapped, never in the optimizer
        self.teacher_model = prepare_teacher(self.accelerator, self.args, teacher_model)
        if loss_terms is None:
            loss_terms = build_loss_terms(self.args, self.model, self.teacher_model)
        self.loss_terms = torch.nn.ModuleList(loss_terms).to(self.args.device)
        if any(parameter.requires_grad for parameter in self.loss_terms.parameters()):
            self.add_callback(LossTermGradientSync(self.loss_terms, self.accelerator))
        self._term_sums: dict[str, float] = defaultdict(float)
        self._term_counts: dict[str, int] = defaultdict(int)
        self._run_sums: dict[str, float] = defaultdict(float)  # over every step this process ran
        self._run_counts: dict[str, int] = defaultdict(int)
        if not any(isinstance(callback, LossCurveCallback) for callback in self.callback_handler.callbacks):
            self.add_callback(LossCurveCallback())

    def create_optimizer(self, model=None):
        """The usual optimizer, plus a parameter group for loss terms that own parameters (projections)."""
        optimizer = super().create_optimizer(model)
        term_parameters = [p for p in self.loss_terms.parameters() if p.requires_grad]
        if term_parameters:
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
        if needs_grad:
            if "output" not in captured:
                raise ValueError(
                    f"{type(model).__name__} did not call its input embeddings in the forward (inputs_embeds "
                    "given?): the adversarial terms perturb their output, so pass input_ids."
                )
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

    def loss_term_means(self) -> dict[str, float]:
        """Each extra term's mean over the training steps this process ran, as `loss_<name>`."""
        return {f"loss_{name}": total / self._run_counts[name] for name, total in self._run_sums.items()}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add each extra term's mean since the last log to the training logs."""
        if "loss" in logs:
            for name, total in self._term_sums.items():
                logs[f"loss_{name}"] = round(total / max(self._term_counts[name], 1), 4)
            self._term_sums.clear()
            self._term_counts.clear()
        super().log(logs, start_time)

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
