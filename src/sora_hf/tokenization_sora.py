"""Tokenization for Sora: a byte-level BPE tokenizer (like RoBERTa's) with BERT-style pairs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE
from transformers.tokenization_utils_base import BatchEncoding
from transformers.tokenization_utils_tokenizers import TokenizersBackend
from transformers.utils import logging

from .packaged import PackagedNameMixin

if TYPE_CHECKING:
    import datasets

logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {
    "vocab_file": "vocab.json",
    "merges_file": "merges.txt",
    "tokenizer_file": "tokenizer.json",
}

# Fixed ids 0-4, in this order, so every Sora checkpoint agrees on them (`SoraConfig` defaults rely on it).
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<mask>")
BYTE_ALPHABET_SIZE = 256
TRAINING_BATCH_SIZE = 1000
# A list of strings whose items all look like file names (no whitespace, a path separator or one of these suffixes)
# is a list of files for `train_sora_tokenizer`, so a typo in a name is an error, not a one-word training text.
TEXT_FILE_SUFFIXES = (
    ".txt",
    ".text",
    ".raw",
    ".tokens",
    ".md",
    ".json",
    ".jsonl",
    ".csv",
    ".tsv",
    ".gz",
    ".bz2",
    ".xz",
)
SURROGATE_FIX = (
    "Fix the text: join UTF-16 surrogate pairs (from JSON escapes or Windows APIs) with "
    "`text.encode('utf-16', 'surrogatepass').decode('utf-16')`, or replace the lone ones with "
    "`text.encode('utf-8', 'replace').decode('utf-8')`."
)


def _find_surrogate(value, where: str) -> tuple[str, int, str] | None:
    """(where, position, character) of the first lone surrogate in a text or a nested list of texts, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # fails only on surrogates
        except UnicodeEncodeError as error:
            return where, error.start, value[error.start]
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if (found := _find_surrogate(item, f"{where}[{index}]")) is not None:
                return found
    return None


class SoraTokenizer(PackagedNameMixin, TokenizersBackend):
    r"""
    Construct a Sora tokenizer: byte-level BPE (backed by 🤗 tokenizers), so any Unicode text encodes without an
    unknown token and decodes back to exactly the same string.

    Special tokens have fixed ids: `<pad>`=0, `<s>`=1 (bos, cls), `</s>`=2 (eos, sep), `<unk>`=3, `<mask>`=4.
    A single sequence is `<s> A </s>`; a pair is `<s> A </s> B </s>` with `token_type_ids` 0 for `<s> A </s>`
    and 1 for `B </s>` (like BERT), for next-sentence prediction and question answering.

    Text must be valid Unicode: a lone surrogate (e.g. `"\\ud800"`) raises a `ValueError` that names its position.
    An empty batch (`tokenizer([])`) gives an empty batch back. `decode` refuses ids outside the vocabulary
    (`ValueError`) instead of dropping them. `from_pretrained` on a folder (or Hub repo) without `tokenizer.json`
    (or `vocab.json` + `merges.txt`) raises `ValueError`; `SoraTokenizer()` in code still builds the byte-only
    tokenizer (5 special tokens + 256 bytes, no merges).

    Spaces are part of the tokens, so a word is encoded differently at the start of the text and after a space.
    `<mask>` strips the space on its left (like RoBERTa): in `"Paris is the <mask> of France."` the mask stands
    for a whole space-prefixed word, as in masked-LM pretraining. With `is_split_into_words=True`, load the
    tokenizer with `add_prefix_space=True` so each word gets the same tokens as in running text.

    Example:

    ```python
    >>> from sora_hf import train_sora_tokenizer
    >>> tokenizer = train_sora_tokenizer(["Hello world!", "Hello there."] * 50, vocab_size=300)
    >>> tokenizer.convert_ids_to_tokens(tokenizer("Hello world!")["input_ids"])
    ['<s>', 'Hello', 'Ġworld', '!', '</s>']
    ```

    Args:
        vocab (`dict[str, int]`, *optional*):
            Token to id. Defaults to the five special tokens followed by the 256 byte symbols (no merges).
        merges (`list[tuple[str, str]]`, *optional*):
            BPE merges, in priority order.
        bos_token (`str`, *optional*, defaults to `"<s>"`):
            Beginning of sequence; the same token as `cls_token`.
        eos_token (`str`, *optional*, defaults to `"</s>"`):
            End of sequence; the same token as `sep_token`.
        sep_token (`str`, *optional*, defaults to `"</s>"`):
            Closes each sequence of an input.
        cls_token (`str`, *optional*, defaults to `"<s>"`):
            First token of every input; its hidden state feeds sequence classification.
        unk_token (`str`, *optional*, defaults to `"<unk>"`):
            Unknown token (never produced by the byte-level vocabulary; kept for API compatibility).
        pad_token (`str`, *optional*, defaults to `"<pad>"`):
            Padding token.
        mask_token (`str` or `AddedToken`, *optional*, defaults to `"<mask>"`):
            Masked-LM token; a plain string becomes an `AddedToken` with `lstrip=True`.
        add_prefix_space (`bool`, *optional*, defaults to `False`):
            Add a space before the text (or each word of pre-split input) so the first word is encoded like
            the others. `False` keeps `decode(encode(text)) == text` exact.
        trim_offsets (`bool`, *optional*, defaults to `True`):
            Leave the leading space out of each token's `offset_mapping`.
        model_max_length (`int`, *optional*, defaults to 512):
            Longest input (in tokens) the model accepts; truncation uses it by default.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    model = BPE

    @classmethod
    def _from_pretrained(cls, resolved_vocab_files, pretrained_model_name_or_path, *args, **kwargs):
        has_vocabulary = resolved_vocab_files.get("tokenizer_file") is not None or (
            resolved_vocab_files.get("vocab_file") is not None
            and resolved_vocab_files.get("merges_file") is not None
        )
        given_in_code = any(kwargs.get(key) is not None for key in ("vocab", "tokenizer_object", "gguf_file"))
        if not has_vocabulary and not given_in_code:
            # Without them the constructor would build the 261-token byte-only vocabulary, unrelated to the model.
            raise ValueError(
                f"No tokenizer files in {str(pretrained_model_name_or_path)!r}: SoraTokenizer.from_pretrained needs "
                "tokenizer.json (or vocab.json and merges.txt). Save the model's tokenizer there with "
                "tokenizer.save_pretrained(...), or load the tokenizer from the folder or repo it was saved in; "
                "SoraTokenizer() builds the untrained byte-only tokenizer on purpose."
            )
        return super()._from_pretrained(resolved_vocab_files, pretrained_model_name_or_path, *args, **kwargs)

    def __init__(
        self,
        vocab: dict[str, int] | None = None,
        merges: list[tuple[str, str]] | list[str] | None = None,
        bos_token: str | AddedToken = "<s>",
        eos_token: str | AddedToken = "</s>",
        sep_token: str | AddedToken = "</s>",
        cls_token: str | AddedToken = "<s>",
        unk_token: str | AddedToken = "<unk>",
        pad_token: str | AddedToken = "<pad>",
        mask_token: str | AddedToken = "<mask>",
        add_prefix_space: bool = False,
        trim_offsets: bool = True,
        model_max_length: int = 512,
        **kwargs,
    ):
        self.add_prefix_space = add_prefix_space
        self.trim_offsets = trim_offsets
        if isinstance(mask_token, str):
            mask_token = AddedToken(mask_token, lstrip=True, rstrip=False, normalized=False, special=True)

        if vocab is None:
            specials = [str(pad_token), str(bos_token), str(eos_token), str(unk_token), str(mask_token)]
            alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
            vocab = {token: index for index, token in enumerate(dict.fromkeys(specials + alphabet))}

        self._tokenizer = Tokenizer(
            BPE(
                vocab=vocab,
                merges=merges or [],
                dropout=None,
                unk_token=str(unk_token),
                continuing_subword_prefix="",
                end_of_word_suffix="",
                fuse_unk=False,
            )
        )
        self._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        self._tokenizer.decoder = decoders.ByteLevel()

        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            sep_token=sep_token,
            cls_token=cls_token,
            unk_token=unk_token,
            pad_token=pad_token,
            mask_token=mask_token,
            add_prefix_space=add_prefix_space,
            trim_offsets=trim_offsets,
            model_max_length=model_max_length,
            **kwargs,
        )
        self.update_post_processor()

    def update_post_processor(self) -> None:
        """Write `<s> A </s>` / `<s> A </s> B </s>` (segment ids 0 then 1) into the backend tokenizer."""
        # `add_bos_token`/`add_eos_token` do not apply (the template always frames with cls/sep), but the base
        # class contract is that they read False when the token is missing.
        if self.bos_token is None and self.add_bos_token:
            object.__setattr__(self, "_add_bos_token", False)
        if self.eos_token is None and self.add_eos_token:
            object.__setattr__(self, "_add_eos_token", False)
        cls, sep = self.cls_token, self.sep_token
        if cls is None or sep is None:
            return
        self._tokenizer.post_processor = processors.Sequence(
            [
                processors.ByteLevel(add_prefix_space=self.add_prefix_space, trim_offsets=self.trim_offsets),
                processors.TemplateProcessing(
                    single=f"{cls}:0 $A:0 {sep}:0",
                    pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                    special_tokens=[(cls, self.cls_token_id), (sep, self.sep_token_id)],
                ),
            ]
        )

    def _encode_plus(
        self, text, text_pair=None, *args, is_split_into_words: bool = False, **kwargs
    ) -> BatchEncoding:
        if is_split_into_words and not self.add_prefix_space:
            logger.warning_once(
                "SoraTokenizer got pre-split words with add_prefix_space=False: each word is encoded as if it "
                "started the text. Load the tokenizer with add_prefix_space=True to encode words as in running text."
            )
        if isinstance(text, (list, tuple)) and not text and not text_pair and not is_split_into_words:
            # An empty batch: the keys, types and widths of a one-text batch, with no rows.
            # (The backend indexes the first encoding and raises IndexError here.)
            one = super()._encode_plus([""], None if text_pair is None else [""], *args, **kwargs)
            return BatchEncoding({key: value[:0] for key, value in one.items()}, encoding=[])
        try:
            return super()._encode_plus(
                text, text_pair, *args, is_split_into_words=is_split_into_words, **kwargs
            )
        except TypeError:
            # `tokenizers` rejects text that is not valid Unicode with "TextEncodeInput must be ..."; say where.
            found = _find_surrogate(text, "text") or _find_surrogate(text_pair, "text_pair")
            if found is None:
                raise
            where, position, char = found
            raise ValueError(
                f"{where} has a lone surrogate {char!r} (U+{ord(char):04X}) at character {position}: it is not valid "
                f"Unicode, so it cannot be encoded as UTF-8 and tokenized. {SURROGATE_FIX}"
            ) from None

    def _decode(self, token_ids, skip_special_tokens: bool = False, **kwargs) -> str:
        ids = token_ids["input_ids"] if isinstance(token_ids, dict) else token_ids
        ids = [ids] if isinstance(ids, int) else ids
        if ids:
            # The backend drops ids it does not know (and overflows on negative ones): refuse them instead.
            vocab_size = len(self)
            if min(ids) < 0 or max(ids) >= vocab_size:
                bad = next(index for index in ids if not 0 <= index < vocab_size)
                raise ValueError(
                    f"Cannot decode token id {bad}: the tokenizer's vocabulary has {vocab_size} tokens (ids 0 to "
                    f"{vocab_size - 1}). Decode ids from a model whose vocab_size matches this tokenizer, or drop "
                    "the ids above it (e.g. padding rows of a resized embedding)."
                )
        return super()._decode(token_ids, skip_special_tokens=skip_special_tokens, **kwargs)


class _TextBatches:
    """Texts grouped into lists for `tokenizers`; counts the non-empty ones and rejects non-strings."""

    def __init__(self, texts: Iterable):
        self.texts = texts
        self.count = 0

    def __iter__(self) -> Iterator[list[str]]:
        batch: list[str] = []
        for text in self.texts:
            if text is None:
                continue
            if not isinstance(text, str):
                raise ValueError(
                    f"train_sora_tokenizer expected texts (str) but got {type(text).__name__}: pass an iterable of "
                    "strings, a list of text file paths, or a datasets.Dataset."
                )
            if text:
                self.count += 1
                batch.append(text)
            if len(batch) == TRAINING_BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch


def _iter_file_lines(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            try:
                for line in handle:
                    yield line.rstrip("\n")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path} is not UTF-8 text ({error}): convert it to UTF-8 first.") from error


def _iter_dataset_column(
    dataset: datasets.Dataset | datasets.IterableDataset, text_column: str
) -> Iterator[str]:
    for batch in dataset.iter(batch_size=TRAINING_BATCH_SIZE):
        yield from batch[text_column]


def _is_file(path: Path) -> bool:
    """`path.is_file()`, False for strings that cannot be paths (too long, NUL bytes): those are texts."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _looks_like_file_name(text: str) -> bool:
    """No whitespace, and a path separator or a text-file suffix: `data/train.txt`, `corpus.jsonl`."""
    if not text or any(char.isspace() for char in text):
        return False
    return "/" in text or os.sep in text or text.lower().endswith(TEXT_FILE_SUFFIXES)


def _as_file_list(source) -> list[Path] | None:
    """The files named by `source`, or None when `source` holds texts.

    A list is a list of files when any item is a `PathLike` or an existing file, or when every item looks like a
    file name (`_looks_like_file_name`); then every item must exist.
    """
    if isinstance(source, os.PathLike):
        source = [source]
    if not isinstance(source, (list, tuple)) or not source:
        return None
    if not all(isinstance(item, (str, os.PathLike)) for item in source):
        return None
    paths = [Path(item) for item in source]
    exists = [_is_file(path) for path in paths]
    given_as_paths = any(isinstance(item, os.PathLike) for item in source)
    if all(exists):
        return paths
    if given_as_paths or any(exists) or all(_looks_like_file_name(str(item)) for item in source):
        missing = [str(path) for path, found in zip(paths, exists) if not found]
        raise ValueError(
            f"train_sora_tokenizer got what looks like a list of text files, but these do not exist: {missing}. "
            "Fix the paths (or pass texts as a generator to skip this check)."
        )
    return None


def _check_training_settings(vocab_size: int, min_frequency: int, model_max_length: int) -> None:
    """Refuse a vocabulary size, merge threshold or maximum length that tokenizer training cannot use."""
    min_vocab_size = BYTE_ALPHABET_SIZE + len(SPECIAL_TOKENS)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= min_vocab_size:
        raise ValueError(
            f"vocab_size must be an int above {min_vocab_size} (256 byte symbols + {len(SPECIAL_TOKENS)} special "
            f"tokens) so that BPE can learn merges; got {vocab_size!r}."
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(
            f"min_frequency must be an int >= 1 (pairs seen fewer times are not merged); got {min_frequency!r}."
        )
    if isinstance(model_max_length, bool) or not isinstance(model_max_length, int) or model_max_length < 2:
        raise ValueError(
            f"model_max_length must be an int >= 2 (room for <s> and </s>); got {model_max_length!r}."
        )


def _training_texts(source, text_column: str) -> tuple[Iterable[str], int | None]:
    """The texts `train_sora_tokenizer` reads from `source`, and their number when known up front."""
    import datasets  # here, not at the top: it adds ~0.7 s to `import sora_hf`

    if isinstance(source, datasets.DatasetDict | datasets.IterableDatasetDict):
        raise ValueError(
            f"train_sora_tokenizer got a DatasetDict with splits {list(source)}: pass one split, e.g. dataset['train']."
        )
    if isinstance(source, datasets.Dataset | datasets.IterableDataset):
        columns = source.column_names or []
        if text_column not in columns:
            raise ValueError(
                f"The dataset has no column {text_column!r} (columns: {columns}): set text_column to the text column."
            )
        feature = (source.features or {}).get(text_column)
        if feature is not None and getattr(feature, "dtype", None) not in ("string", "large_string"):
            raise ValueError(
                f"Column {text_column!r} holds {feature}, not strings: set text_column to a text column."
            )
        length = len(source) if isinstance(source, datasets.Dataset) else None
        return _iter_dataset_column(source, text_column), length
    if isinstance(source, str):
        raise ValueError(
            "train_sora_tokenizer got a single string: pass a list of texts, or a list of paths for text files."
        )
    if (files := _as_file_list(source)) is not None:
        return _iter_file_lines(files), None
    if isinstance(source, Iterable):
        return source, None
    raise ValueError(
        f"train_sora_tokenizer cannot read {type(source).__name__}: pass an iterable of strings, a list of "
        "text file paths, or a datasets.Dataset."
    )


def train_sora_tokenizer(
    texts_or_files_or_dataset: Iterable[str]
    | list[str | os.PathLike]
    | datasets.Dataset
    | datasets.IterableDataset,
    vocab_size: int = 8000,
    min_frequency: int = 2,
    text_column: str = "text",
    model_max_length: int = 512,
    show_progress: bool = False,
) -> SoraTokenizer:
    """Train a byte-level BPE `SoraTokenizer` on texts, text files (one text per line) or a `datasets` column.

    A list of strings is read as file names when every item looks like one (no whitespace, and a path separator or
    a suffix such as `.txt`, `.jsonl`); a missing file then raises `ValueError`. Pass texts as a generator
    (`iter(texts)`) to skip this check.
    """
    _check_training_settings(vocab_size, min_frequency, model_max_length)
    texts, length = _training_texts(texts_or_files_or_dataset, text_column)
    batches = _TextBatches(texts)
    try:
        tokenizer = SoraTokenizer(model_max_length=model_max_length).train_new_from_iterator(
            batches,
            vocab_size=vocab_size,
            length=length,
            min_frequency=min_frequency,
            show_progress=show_progress,
        )
    except UnicodeEncodeError as error:  # a lone surrogate in a training text
        char = error.object[error.start]
        raise ValueError(
            f"A training text has a lone surrogate {char!r} (U+{ord(char):04X}) at character {error.start}: it is "
            f"not valid Unicode. {SURROGATE_FIX}"
        ) from None
    if batches.count == 0:
        raise ValueError("train_sora_tokenizer found no non-empty text to learn from: check the input.")
    return tokenizer


__all__ = ["SoraTokenizer", "train_sora_tokenizer"]
