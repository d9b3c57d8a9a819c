"""Sentence similarity and semantic search with the packaged Sora's distilled sentence space.

`import sora_hf` registers the `sora` model type; then `SentenceTransformer(<sora folder>)` loads the packaged
checkpoint's encoder, pooler and sentence head (distilled from all-MiniLM-L6-v2, 384-d, unit length).

    python examples/sentence_similarity.py [--query "a pet that purrs"] [--top-k 3] [--corpus sentences.txt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentence_transformers import SentenceTransformer, util
from transformers import pipeline

import sora_hf  # noqa: F401  (registers Sora with transformers' Auto classes, which sentence-transformers uses)
from sora_hf import SoraModel, SoraTokenizer, packaged_checkpoint_path

CORPUS = [
    "A man is eating food.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "The cat sleeps on the warm windowsill.",
    "Stock markets fell sharply after the announcement.",
    "Two children are playing football in the park.",
    "The new phone has a faster processor and a better camera.",
    "It rained all day, so the match was cancelled.",
]
PAIRS = [
    ("A man is playing a guitar.", "Someone plays an instrument."),
    ("A man is playing a guitar.", "The economy shrank last quarter."),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", action="append", help="a search query (repeatable)")
    parser.add_argument("--top-k", "--top_k", type=int, default=3)
    parser.add_argument(
        "--corpus", help="a UTF-8 text file, one sentence per line (default: a built-in list)"
    )
    args = parser.parse_args()
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    corpus = CORPUS
    if args.corpus:
        corpus = [
            line.strip()
            for line in Path(args.corpus).read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if not corpus:
            parser.error(f"{args.corpus} holds no non-empty line")
    queries = args.query or ["a pet that is asleep", "music performance", "bad weather"]

    model = SentenceTransformer(packaged_checkpoint_path("sora"), device="cpu")
    print(f"{model.get_embedding_dimension()}-d sentence embeddings, max {model.max_seq_length} tokens\n")

    # 1. similarity of sentence pairs (cosine: the embeddings are unit length)
    for left, right in PAIRS:
        embeddings = model.encode([left, right])
        print(f"{float(model.similarity(embeddings[:1], embeddings[1:])):.3f}  {left!r} ~ {right!r}")

    # 2. top-k semantic search over a corpus
    corpus_embeddings = model.encode(corpus, convert_to_tensor=True)
    query_embeddings = model.encode(queries, convert_to_tensor=True)
    for query, hits in zip(
        queries, util.semantic_search(query_embeddings, corpus_embeddings, top_k=args.top_k)
    ):
        print(f"\nquery: {query}")
        for hit in hits:
            print(f"  {hit['score']:.3f}  {corpus[hit['corpus_id']]}")

    # 3. token features with transformers' own pipeline: the encoder alone (the packaged config also has a
    #    decoder, whose states AutoModel's feature-extraction output would otherwise be)
    extractor = pipeline(
        "feature-extraction",
        model=SoraModel.from_pretrained("sora", with_decoder=False),
        tokenizer=SoraTokenizer.from_pretrained("sora"),
    )
    features = extractor(queries[0], return_tensors=True)
    print(f"\nfeature-extraction: {tuple(features.shape)} token states for {queries[0]!r}")


if __name__ == "__main__":
    main()
