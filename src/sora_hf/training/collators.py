"""Data collators for Sora pretraining: MLM + next-sentence prediction for the encoder, BART denoising for the decoder."""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from itertools import chain

import torch
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
# Offsets the seed of each `DataLoader` worker so that workers do not draw the same masks.
_WORKER_SEED_STRIDE = 1_000_003


def _check_probability(name: str, value: float, allow_zero: bool = True) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not low_ok or value > 1:
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must be a probability in {bound}; got {value!r}.")


def _read_chunks(examples: Sequence[Mapping]) -> list[list[list[int]]]:
    """The `sentences` of each example, checked to be non-empty lists of token-id lists."""
    if not isinstance(examples, Sequence) or isinstance(examples, str | bytes) or len(examples) == 0:
        raise ValueError("The collator needs a non-empty list of examples, each {'sentences': [[ids], ...]}.")
    chunks = []
    for index, example in enumerate(examples):
        if not isinstance(example, Mapping) or "sentences" not in example:
            keys = list(example) if isinstance(example, Mapping) else type(example).__name__
            raise ValueError(
                f"Example {index} has no 'sentences' field (got {keys}): build the dataset with "
                "sora_hf.training.pretraining_data.prepare_pretraining_dataset, and pass "
                "remove_unused_columns=False to TrainingArguments so Trainer keeps that column."
            )
        sentences = example["sentences"]
        if isinstance(sentences, torch.Tensor):
            sentences = sentences.tolist()
        if not isinstance(sentences, Sequence) or not sentences or not isinstance(sentences[0], Sequence):
            raise ValueError(
                f"Example {index}: 'sentences' must be a non-empty list of token-id lists; got {sentences!r:.80}."
            )
        sentences = [list(sentence) for sentence in sentences if len(sentence) > 0]
        if not sentences:
            raise ValueError(f"Example {index} has no tokens: drop empty chunks from the dataset.")
        chunks.append(sentences)
    return chunks


class _SoraCollatorBase:
    """Token ids, padding and the random generator shared by the Sora collators."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None, seed: int | None):
        missing = [
            name
            for name in ("pad_token", "cls_token", "sep_token", "mask_token")
            if getattr(tokenizer, f"{name}_id", None) is None
        ]
        if missing:
            raise ValueError(
                f"The tokenizer has no {', '.join(missing)}: Sora pretraining needs <pad>, <s>, </s> and <mask> "
                "(use SoraTokenizer or train_sora_tokenizer)."
            )
        if pad_to_multiple_of is not None and (
            isinstance(pad_to_multiple_of, bool)
            or not isinstance(pad_to_multiple_of, int)
            or pad_to_multiple_of < 1
        ):
            raise ValueError(
                f"pad_to_multiple_of must be a positive int or None; got {pad_to_multiple_of!r}."
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an int or None; got {seed!r}.")
        self.tokenizer = tokenizer
        self.pad_token_id = tokenizer.pad_token_id
        self.cls_token_id = tokenizer.cls_token_id
        self.sep_token_id = tokenizer.sep_token_id
        self.mask_token_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._generator_worker: int | None = None

    def generator(self, chunks: list[list[list[int]]]) -> torch.Generator:
        """The collator's own generator when seeded (one stream per DataLoader worker); unseeded, a generator
        seeded by the batch's tokens and torch's initial seed."""
        if self.seed is None:
            # A pure function of (Trainer's seed, batch content): a resumed run draws the same masks as the
            # uninterrupted one (Trainer restores the global RNG only after fetching the first resumed batch),
            # and reshuffled batches get fresh masks every epoch.
            digest = hashlib.blake2b(repr(chunks).encode(), digest_size=8)
            digest.update(torch.initial_seed().to_bytes(8, "little", signed=False))
            return torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little") >> 1)
        worker = torch.utils.data.get_worker_info()
        worker_id = -1 if worker is None else worker.id
        if self._generator is None or self._generator_worker != worker_id:
            self._generator = torch.Generator().manual_seed(self.seed + _WORKER_SEED_STRIDE * (worker_id + 1))
            self._generator_worker = worker_id
        return self._generator

    def padded_length(self, longest: int) -> int:
        multiple = self.pad_to_multiple_of
        return longest if multiple is None else -(-longest // multiple) * multiple

    def pad(self, rows: list[list[int]], pad_value: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows as one right-padded LongTensor, and the boolean mask of real tokens."""
        lengths = torch.tensor([len(row) for row in rows])
        width = self.padded_length(int(lengths.max()))
        valid = torch.arange(width) < lengths[:, None]
        padded = torch.full((len(rows), width), pad_value, dtype=torch.long)
        padded.masked_scatter_(valid, torch.tensor(list(chain.from_iterable(rows)), dtype=torch.long))
        return padded, valid


class DataCollatorForDenoising(_SoraCollatorBase):
    """BART-style denoising: sentence permutation, then text infilling (Poisson spans, one `<mask>` per span).

    Examples are `{"sentences": [[ids], ...]}` (or `{"input_ids": [ids]}`, one sentence, special tokens allowed
    at the ends). Returns `input_ids` and `attention_mask` of the corrupted `<s> ... </s>` and `labels`, the
    original `<s> s1 s2 ... </s>` padded with -100.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        mask_span_lambda: float = 3.0,
        infilling_probability: float = 0.3,
        permute_sentences: bool = True,
        pad_to_multiple_of: int | None = 8,
        seed: int | None = None,
    ):
        super().__init__(tokenizer, pad_to_multiple_of, seed)
        if (
            isinstance(mask_span_lambda, bool)
            or not isinstance(mask_span_lambda, int | float)
            or mask_span_lambda <= 0
        ):
            raise ValueError(
                f"mask_span_lambda (mean span length) must be a positive number; got {mask_span_lambda!r}."
            )
        _check_probability("infilling_probability", infilling_probability)
        self.mask_span_lambda = float(mask_span_lambda)
        self.infilling_probability = float(infilling_probability)
        self.permute_sentences = permute_sentences

    def corrupt(
        self, chunks: list[list[list[int]]], generator: torch.Generator | None
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Corrupted and original `<s> ... </s>` rows for each chunk of sentences."""
        cls, sep, mask = self.cls_token_id, self.sep_token_id, self.mask_token_id
        batch_size = len(chunks)
        lengths = [sum(len(sentence) for sentence in chunk) for chunk in chunks]
        to_mask = [round(length * self.infilling_probability) for length in lengths]
        longest = max(lengths)
        # Enough Poisson span lengths per row to cover its masking budget.
        draws = int(1.5 * max(to_mask) / self.mask_span_lambda) + 8
        rates = torch.full((batch_size, draws), self.mask_span_lambda)
        span_lengths = torch.poisson(rates, generator=generator).long()
        while (span_lengths.sum(dim=1) < torch.tensor(to_mask)).any():
            span_lengths = torch.cat([span_lengths, torch.poisson(rates, generator=generator).long()], dim=1)
        span_cumsum = span_lengths.cumsum(1).tolist()
        span_lengths = span_lengths.tolist()
        # Random order of the gaps between kept tokens in each row: argsort of uniform keys, padding keys last.
        keys = torch.rand((batch_size, longest + 1), generator=generator)
        gap_counts = torch.tensor([length - budget for length, budget in zip(lengths, to_mask)]) + 1
        keys.masked_fill_(torch.arange(longest + 1) >= gap_counts[:, None], 2.0)
        gap_order = keys.argsort(dim=1).tolist()
        sentence_keys = torch.rand(
            (batch_size, max(len(chunk) for chunk in chunks)), generator=generator
        ).tolist()

        corrupted_rows, original_rows = [], []
        for row, chunk in enumerate(chunks):
            original_rows.append([cls, *chain.from_iterable(chunk), sep])
            if self.permute_sentences and len(chunk) > 1:
                order = sorted(range(len(chunk)), key=sentence_keys[row].__getitem__)
                tokens = list(chain.from_iterable(chunk[index] for index in order))
            else:
                tokens = original_rows[-1][1:-1]
            budget = to_mask[row]
            if budget == 0:
                corrupted_rows.append([cls, *tokens, sep])
                continue
            # Spans drawn until they cover the budget; the last is trimmed so they cover it exactly.
            cumsum = span_cumsum[row]
            count = min(bisect_left(cumsum, budget) + 1, len(cumsum))
            spans = span_lengths[row][:count]
            spans[-1] -= max(0, cumsum[count - 1] - budget)
            # Each span sits in its own gap between kept tokens, so every <mask> stands for exactly one span
            # (a zero-length span is a pure insertion). More spans than gaps (tiny rows) share gaps.
            valid_gaps = lengths[row] - budget + 1
            if count <= valid_gaps:
                gaps = sorted(gap_order[row][:count])
            else:
                gaps = sorted(gap_order[row][index % valid_gaps] for index in range(count))
            out = [cls]
            position = emitted = 0
            for gap, span in zip(gaps, spans):
                out.extend(tokens[position : position + gap - emitted])
                position += gap - emitted
                emitted = gap
                out.append(mask)
                position += span
            out.extend(tokens[position:])
            out.append(sep)
            corrupted_rows.append(out)
        return corrupted_rows, original_rows

    def __call__(self, examples: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if (
            examples
            and isinstance(examples[0], Mapping)
            and "sentences" not in examples[0]
            and "input_ids" in examples[0]
        ):
            special = {self.cls_token_id, self.sep_token_id, self.pad_token_id}
            examples = [
                {"sentences": [[i for i in example["input_ids"] if i not in special]]} for example in examples
            ]
        chunks = _read_chunks(examples)
        corrupted, original = self.corrupt(chunks, self.generator(chunks))
        input_ids, valid = self.pad(corrupted, self.pad_token_id)
        labels, _ = self.pad(original, IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": valid.long(), "labels": labels}


class DataCollatorForSoraPretraining(_SoraCollatorBase):
    r"""
    Collate packed sentence chunks into `SoraForPreTraining` batches: masked LM + next-sentence prediction for
    the encoder and, with `denoising=True`, BART-style denoising targets for the decoder.

    Each example is `{"sentences": [[ids], ...]}` (consecutive sentences of one document, no special tokens), as
    made by `prepare_pretraining_dataset`. Each chunk is split at a random sentence boundary into `A` and `B` (a
    one-sentence chunk at its middle token); with probability `nsp_probability`, `B` is replaced by the second
    part of another example of the batch (`next_sentence_label` 1, else 0). The pair `<s> A </s> B </s>` is then
    masked dynamically: `mlm_probability` of its non-special tokens (whole words with `whole_word_masking`),
    at least one per row, become `<mask>` (80%), a random token (10%) or stay as they are (10%).

    Returns padded LongTensors `input_ids`, `token_type_ids`, `attention_mask`, `labels` (-100 where not
    predicted), `next_sentence_label`, and with `denoising=True` also `denoising_input_ids`,
    `denoising_attention_mask` and `decoder_labels` (the original `<s> s1 s2 ... </s>` of the chunk, -100 on
    padding), see [`DataCollatorForDenoising`].

    Randomness comes from torch's global RNG (seeded and checkpointed by `Trainer`), or from the collator's own
    `torch.Generator` when `seed` is given.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        mlm_probability: float = 0.15,
        whole_word_masking: bool = False,
        nsp_probability: float = 0.5,
        denoising: bool = True,
        mask_span_lambda: float = 3.0,
        infilling_probability: float = 0.3,
        permute_sentences: bool = True,
        pad_to_multiple_of: int | None = 8,
        seed: int | None = None,
        mask_replace_probability: float = 0.8,
        random_replace_probability: float = 0.1,
    ):
        super().__init__(tokenizer, pad_to_multiple_of, seed)
        _check_probability("mlm_probability", mlm_probability, allow_zero=False)
        _check_probability("nsp_probability", nsp_probability)
        _check_probability("mask_replace_probability", mask_replace_probability)
        _check_probability("random_replace_probability", random_replace_probability)
        if mask_replace_probability + random_replace_probability > 1:
            raise ValueError(
                "mask_replace_probability + random_replace_probability must be <= 1 (the rest stays unchanged); "
                f"got {mask_replace_probability} + {random_replace_probability}."
            )
        self.mlm_probability = float(mlm_probability)
        self.whole_word_masking = whole_word_masking
        self.nsp_probability = float(nsp_probability)
        self.mask_replace_probability = float(mask_replace_probability)
        self.random_replace_probability = float(random_replace_probability)
        self.denoising = denoising
        self.denoiser = (
            DataCollatorForDenoising(
                tokenizer,
                mask_span_lambda,
                infilling_probability,
                permute_sentences,
                pad_to_multiple_of,
                seed,
            )
            if denoising
            else None
        )
        special_ids = set(tokenizer.all_special_ids) | {
            self.pad_token_id,
            self.cls_token_id,
            self.sep_token_id,
        }
        self.is_special = torch.zeros(self.vocab_size, dtype=torch.bool)
        self.is_special[sorted(special_ids)] = True
        # Random replacements come from the regular vocabulary, after the reserved special ids.
        self.first_regular_id = max(special_ids) + 1
        if self.first_regular_id >= self.vocab_size:
            raise ValueError(
                "The tokenizer has no regular tokens after its special tokens: nothing to sample from."
            )
        self.is_word_start = None
        if whole_word_masking:
            tokens = tokenizer.convert_ids_to_tokens(list(range(self.vocab_size)))
            self.is_word_start = torch.tensor(
                [token is not None and token.startswith("Ġ") for token in tokens]
            )
            self.is_word_start |= self.is_special

    def next_sentence_pairs(
        self, chunks: list[list[list[int]]], generator: torch.Generator | None
    ) -> tuple[list[list[int]], list[int], list[int]]:
        """`<s> A </s> B </s>` rows, the length of `<s> A </s>` in each, and the next-sentence labels."""
        batch_size = len(chunks)
        split_draws = torch.rand(batch_size, generator=generator).tolist()
        is_random = (torch.rand(batch_size, generator=generator) < self.nsp_probability).tolist()
        # Another row for each row (never itself): a uniform non-zero offset.
        offsets = torch.randint(1, max(batch_size, 2), (batch_size,), generator=generator).tolist()
        firsts, seconds = [], []
        for chunk, draw in zip(chunks, split_draws):
            if len(chunk) >= 2:
                split = 1 + int(draw * (len(chunk) - 1))
                firsts.append(list(chain.from_iterable(chunk[:split])))
                seconds.append(list(chain.from_iterable(chunk[split:])))
            else:
                tokens = chunk[0]
                middle = max(1, len(tokens) // 2)
                firsts.append(tokens[:middle])
                seconds.append(tokens[middle:])
        rows, first_lengths, labels = [], [], []
        cls, sep = self.cls_token_id, self.sep_token_id
        for row in range(batch_size):
            first, second = firsts[row], seconds[row]
            label = 0
            if is_random[row] and batch_size > 1 and second:
                other = seconds[(row + offsets[row]) % batch_size]
                if other:
                    # Cut to the real continuation's length, so the length of B says nothing about the label.
                    second, label = other[: len(second)], 1
            rows.append([cls, *first, sep, *second, sep])
            first_lengths.append(len(first) + 2)
            labels.append(label)
        return rows, first_lengths, labels

    def mask_tokens(
        self, input_ids: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Dynamic MLM masking of non-special tokens (whole words optionally); returns masked ids and labels."""
        batch_size, width = input_ids.shape
        # `index_select` rather than `lookup[input_ids]`: advanced indexing is ~1000x slower on small busy CPUs.
        candidates = ~self.is_special.index_select(0, input_ids.view(-1)).view(batch_size, width)
        draws = torch.rand((batch_size, width), generator=generator)
        decisions = torch.rand((batch_size, width), generator=generator)
        if self.whole_word_masking:
            word_start = self.is_word_start.index_select(0, input_ids.view(-1)).view(batch_size, width)
            word_start[:, 1:] |= ~candidates[:, :-1]  # the token after a special token starts a word
            word_start[:, 0] = True
            positions = torch.arange(width).expand(batch_size, width)
            start_of = torch.cummax(torch.where(word_start, positions, 0), dim=1).values
            eligible = word_start & candidates
        else:
            eligible = candidates
        chosen = eligible & (draws < self.mlm_probability)
        # At least one prediction per row: rows that drew none get their eligible position with the smallest draw.
        empty = ~chosen.any(dim=1) & eligible.any(dim=1)
        if empty.any():
            fallback = torch.where(eligible, draws, 2.0).argmin(dim=1)
            chosen[empty, fallback[empty]] = True
        if self.whole_word_masking:
            # Every token of a chosen word, with one 80/10/10 decision per word.
            selected = chosen.gather(1, start_of) & candidates
            decisions = decisions.gather(1, start_of)
        else:
            selected = chosen
        labels = torch.where(selected, input_ids, IGNORE_INDEX)
        replace_with_mask = selected & (decisions < self.mask_replace_probability)
        replace_with_random = (
            selected
            & ~replace_with_mask
            & (decisions < self.mask_replace_probability + self.random_replace_probability)
        )
        random_ids = torch.randint(
            self.first_regular_id, self.vocab_size, (batch_size, width), generator=generator
        )
        masked = torch.where(replace_with_mask, self.mask_token_id, input_ids)
        masked = torch.where(replace_with_random, random_ids, masked)
        return masked, labels

    def padded_encoder_rows(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad encoder rows, checking that every id lies in the collator's vocabulary."""
        input_ids, valid = self.pad(rows, self.pad_token_id)
        largest = int(input_ids.max())
        if largest >= self.vocab_size:
            raise ValueError(
                f"Token id {largest} is outside the tokenizer's vocabulary of {self.vocab_size}: the dataset was "
                "tokenized with a different tokenizer than the collator's."
            )
        return input_ids, valid

    def single_text_rows(self, chunks: list[list[list[int]]]) -> list[list[int]]:
        """`<s> text </s>` rows, each chunk's sentences joined into one text."""
        return [[self.cls_token_id, *chain.from_iterable(chunk), self.sep_token_id] for chunk in chunks]

    def add_denoising(
        self, batch: dict[str, torch.Tensor], chunks: list[list[list[int]]], generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """Add the decoder's corrupted inputs and reconstruction targets to `batch` (with `denoising=True`)."""
        if self.denoiser is not None:
            corrupted, original = self.denoiser.corrupt(chunks, generator)
            denoising_input_ids, denoising_valid = self.pad(corrupted, self.pad_token_id)
            batch["denoising_input_ids"] = denoising_input_ids
            batch["denoising_attention_mask"] = denoising_valid.long()
            batch["decoder_labels"], _ = self.pad(original, IGNORE_INDEX)
        return batch

    def __call__(self, examples: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        chunks = _read_chunks(examples)
        generator = self.generator(chunks)
        rows, first_lengths, nsp_labels = self.next_sentence_pairs(chunks, generator)
        input_ids, valid = self.padded_encoder_rows(rows)
        token_type_ids = (
            (torch.arange(input_ids.shape[1]) >= torch.tensor(first_lengths)[:, None]) & valid
        ).long()
        masked_ids, labels = self.mask_tokens(input_ids, generator)
        batch = {
            "input_ids": masked_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": valid.long(),
            "labels": labels,
            "next_sentence_label": torch.tensor(nsp_labels, dtype=torch.long),
        }
        return self.add_denoising(batch, chunks, generator)


def aligned_token_batch(
    examples: Sequence[Mapping], chunks: list[list[list[int]]], width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's per-token targets laid out like `<s> text </s>` rows of `width` positions, and their mask."""
    flat = [
        torch.as_tensor(example.get("teacher_token_states", []), dtype=torch.float32) for example in examples
    ]
    num_tokens = [sum(len(sentence) for sentence in chunk) for chunk in chunks]
    size = next((len(row) // count for row, count in zip(flat, num_tokens) if count and len(row)), 0)
    for index, (row, count) in enumerate(zip(flat, num_tokens)):
        if size == 0 or row.numel() != count * size:
            raise ValueError(
                f"Example {index} has {row.numel()} teacher_token_states values for {count} tokens: it needs "
                "num_tokens * teacher_size values (build the dataset with prepare_sentence_distillation_dataset "
                "and token_targets=True)."
            )
    states = torch.zeros(len(examples), width, size)
    mask = torch.zeros(len(examples), width, dtype=torch.long)
    for index, (row, count) in enumerate(zip(flat, num_tokens)):
        states[index, 1 : 1 + count] = row.view(count, size)  # position 0 is <s>
        mask[index, 1 : 1 + count] = 1
    mask &= (states.abs().sum(-1) > 0).long()  # tokens the teacher had no characters for carry zeros
    return states, mask


class DataCollatorForSentenceDistillation(DataCollatorForSoraPretraining):
    r"""
    Collate single texts with a teacher's sentence embeddings into `SoraForPreTraining` batches: masked LM on
    `<s> text </s>` plus the teacher's embedding as `teacher_embeddings`, and with `denoising=True` the decoder's
    denoising targets of the same text. No next-sentence pairs: a downstream classifier sees one text per row.

    Each example is `{"sentences": [[ids], ...], "teacher_embedding": [floats]}` (the sentences are joined), as
    made by `sora_hf.training.sentence_distillation.prepare_sentence_distillation_dataset`. When the examples
    also carry `teacher_token_states` (the teacher's states aligned to the text's tokens, flattened to
    `num_tokens * size` numbers), the batch gets `teacher_token_states` `(batch, length, size)` and
    `teacher_token_mask` (1 at text tokens, 0 at `<s>`, `</s>` and padding). The constructor takes
    [`DataCollatorForSoraPretraining`]'s masking and denoising arguments.
    """

    def __call__(self, examples: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        chunks = _read_chunks(examples)
        missing = [index for index, example in enumerate(examples) if "teacher_embedding" not in example]
        if missing:
            raise ValueError(
                f"Examples {missing[:5]} have no 'teacher_embedding' field: build the dataset with "
                "prepare_sentence_distillation_dataset, and pass remove_unused_columns=False to TrainingArguments."
            )
        generator = self.generator(chunks)
        input_ids, valid = self.padded_encoder_rows(self.single_text_rows(chunks))
        masked_ids, labels = self.mask_tokens(input_ids, generator)
        batch = {
            "input_ids": masked_ids,
            "token_type_ids": torch.zeros_like(input_ids),
            "attention_mask": valid.long(),
            "labels": labels,
            "teacher_embeddings": torch.tensor(
                [list(example["teacher_embedding"]) for example in examples], dtype=torch.float32
            ),
        }
        if "teacher_token_states" in examples[0]:
            batch["teacher_token_states"], batch["teacher_token_mask"] = aligned_token_batch(
                examples, chunks, input_ids.shape[1]
            )
        return self.add_denoising(batch, chunks, generator)


__all__ = [
    "DataCollatorForDenoising",
    "DataCollatorForSentenceDistillation",
    "DataCollatorForSoraPretraining",
    "IGNORE_INDEX",
    "aligned_token_batch",
]
