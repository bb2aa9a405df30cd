"""Benchmark: the corpus stages on a synthetic Wikipedia dump, side by side with the references.

Run from the repository root (wikiextractor is installed for the benchmark only):

    pip install wikiextractor
    python benchmarks/bench_corpus.py                   # 2,000 articles, about 5 minutes
    python benchmarks/bench_corpus.py --articles 8000   # bigger dump
    python benchmarks/bench_corpus.py --baseline-ref ""  # skip the "before" columns

One run, one machine:

1. writes a dump in the real export schema (``benchmarks/corpus_dump.py``: templates, links,
   refs, tables, categories, redirects, other namespaces, duplicates, 1 % long articles of
   100-300 KB of wikitext);
2. reads it with our reader (``iter_dump_articles``) in one process, then with ``--workers``
   processes, and with ``wikiextractor`` (``--processes 1``, then ``--workers``);
3. cleans the articles with ``clean_corpus`` in one process, then with ``--workers`` processes;
4. times converting one article by size (5 KB ... 300 KB of wikitext);
5. "before": the same measurements with the code at ``--baseline-ref`` (default: the commit
   before this work), exported with ``git archive`` into a temporary folder and run in a
   subprocess, plus how often old and new output agree.

Single-process figures are CPU seconds (``time.process_time``, children included for
wikiextractor), steadier than wall time on a shared machine; pool figures are wall seconds with
the CPU seconds of all processes beside them. Peak memory is the maximum resident set size.

Goals (issue 9): cost per article linear in its length; our reader at least as fast as
wikiextractor on one core; cleaning at least 3x the old rate per core; both stages scaling over
cores with memory flat in the number of articles.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_dump import article_wikitext, write_dump  # noqa: E402

SIZES_KB = (5, 33, 66, 131, 300)
DEFAULT_BASELINE = "efc82a7"


# --------------------------------------------------------------------------------------------
# measurements, run in a subprocess with the implementation under test first on sys.path
# --------------------------------------------------------------------------------------------


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(dump: str, workers: int, out_dir: str, what: str) -> dict:
    import pandas as pd

    from instruct_global.languages import get_language
    from instruct_global.lib.corpus import wikipedia
    from instruct_global.lib.corpus.cleaning import CleaningConfig, clean_corpus
    from instruct_global.lib.corpus.documents import documents_frame

    res: dict = {}
    pooled = "workers" in wikipedia.iter_dump_articles.__code__.co_varnames
    if "read" in what:
        t = time.process_time()
        rows = list(wikipedia.iter_dump_articles(dump, "yor"))
        res["read_cpu"] = time.process_time() - t
        res["articles"] = len(rows)
        with open(Path(out_dir) / "texts.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"t": r["title"], "x": r["text"]}, ensure_ascii=False) + "\n")
        if pooled and workers > 1:
            c0, w0 = _cpu_children(), time.time()
            t = time.process_time()
            n = sum(1 for _ in wikipedia.iter_dump_articles(dump, "yor", workers=workers))
            res["read_pool_wall"] = time.time() - w0
            res["read_pool_cpu"] = time.process_time() - t + _cpu_children() - c0
            assert n == len(rows)
        docs = documents_frame(rows, extra_columns=("page_id", "wiki"))
        docs.to_parquet(Path(out_dir) / "docs.parquet")
    if "sizes" in what:
        rng = random.Random(7)
        res["per_size_ms"] = {}
        for kb in SIZES_KB:
            text = article_wikitext(rng, "Ìbàdàn", kb * 1000)
            reps = max(1, int(200 / kb))
            t = time.process_time()
            for _ in range(reps):
                wikipedia.wikitext_to_text(text)
            res["per_size_ms"][kb] = (time.process_time() - t) / reps * 1000
    if "clean" in what:
        docs = pd.read_parquet(Path(out_dir).parent / "docs.parquet")
        lang = get_language("yor")
        clean_corpus(docs.head(3), lang)  # warm the language models
        t = time.process_time()
        result = clean_corpus(docs, lang)
        res["clean_cpu"] = time.process_time() - t
        res["clean_docs"] = len(docs)
        res["clean_kept"] = sorted(set(result.clean["doc_id"]))
        res["clean_chunks"] = len(result.clean)
        res["clean_drops"] = result.drop_counts
        if workers > 1 and "workers" in CleaningConfig.__dataclass_fields__:
            c0, w0 = _cpu_children(), time.time()
            t = time.process_time()
            clean_corpus(docs, lang, CleaningConfig(workers=workers))
            res["clean_pool_wall"] = time.time() - w0
            res["clean_pool_cpu"] = time.process_time() - t + _cpu_children() - c0
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def _run_measure(root: Path, dump: Path, workers: int, out_dir: Path, what: str) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, __file__, "--measure", str(dump), "--workers", str(workers), "--out", str(out_dir),
           "--what", what]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed ({root}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _stream_rss(root: Path, dump: Path) -> float:
    """Peak RSS (MB) of a process that streams the dump without keeping the rows."""
    code = (
        "import resource,sys; from instruct_global.lib.corpus.wikipedia import iter_dump_articles as it;"
        "n=sum(1 for _ in it(sys.argv[1], 'yor'));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code, str(dump)], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _wikiextractor(dump: Path, processes: int, out: Path) -> tuple[float, float, int]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "wikiextractor.WikiExtractor", str(dump), "--processes", str(processes),
           "--json", "-q", "-o", str(out)]
    c0, w0 = _cpu_children(), time.time()
    subprocess.run(cmd, check=True, capture_output=True)
    wall, cpu = time.time() - w0, _cpu_children() - c0
    docs = sum(Path(f).read_text(encoding="utf-8").count("\n") for f in glob.glob(str(out / "*" / "*")))
    return cpu, wall, docs


def _baseline_root(ref: str, tmp: Path) -> Path | None:
    if not ref:
        return None
    dest = tmp / "baseline"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", ref, "instruct_global"], cwd=ROOT, capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"(no baseline: git archive {ref} failed: {archive.stderr.decode()[:200]})")
        return None
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def _agreement(new_dir: Path, old_dir: Path) -> tuple[int, int]:
    def load(d: Path) -> list[tuple[str, str]]:
        lines = (d / "texts.jsonl").read_text(encoding="utf-8").splitlines()
        return [(r["t"], r["x"]) for r in map(json.loads, lines)]

    new, old = load(new_dir), load(old_dir)
    same = sum(a == b for a, b in zip(new, old, strict=False))
    return same, max(len(new), len(old))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--long-share", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE)
    parser.add_argument("--measure")
    parser.add_argument("--out")
    parser.add_argument("--what", default="read,sizes,clean")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.workers, args.out, args.what)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_corpus_") as tmp_name:
        tmp = Path(tmp_name)
        dump = tmp / "yowiki-bench-pages-articles-multistream.xml.bz2"
        t = time.time()
        counts = write_dump(dump, args.articles, long_share=args.long_share)
        print(f"dump: {counts['articles']} articles ({counts['long_articles']} of 100-300 KB), "
              f"{counts['redirects']} redirects, {counts['other_namespace']} other-namespace pages, "
              f"{counts['duplicates']} duplicates; {counts['bytes'] / 1e6:.1f} MB of wikitext, "
              f"{dump.stat().st_size / 1e6:.1f} MB bz2 ({time.time() - t:.0f} s to write)")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; pools use {args.workers} workers\n")

        new = _run_measure(ROOT, dump, args.workers, tmp / "new", "read,sizes")
        (tmp / "docs.parquet").write_bytes((tmp / "new" / "docs.parquet").read_bytes())
        new.update(_run_measure(ROOT, dump, args.workers, tmp / "new" / "clean", "clean"))
        base_root = _baseline_root(args.baseline_ref, tmp)
        old: dict = {}
        if base_root is not None:
            old = _run_measure(base_root, dump, 1, tmp / "old", "read,sizes")
            old.update(_run_measure(base_root, dump, 1, tmp / "old" / "clean", "clean"))
        wx1 = _wikiextractor(dump, 1, tmp / "wx1")
        wxn = _wikiextractor(dump, args.workers, tmp / "wxn") if args.workers > 1 else None

        n = new["articles"]
        print("== reader: articles per second (single process: CPU s; pools: wall s, CPU s of all processes)")
        rows = [("ours, 1 process", n / new["read_cpu"], new["read_cpu"])]
        if "read_pool_wall" in new:
            rows.append((f"ours, {args.workers} workers (wall)", n / new["read_pool_wall"], new["read_pool_wall"]))
        if old:
            rows.append(("before (mwparserfromhell), 1 process", old["articles"] / old["read_cpu"], old["read_cpu"]))
        rows.append(("wikiextractor --processes 1", wx1[2] / wx1[0], wx1[0]))
        if wxn:
            rows.append((f"wikiextractor --processes {args.workers} (wall)", wxn[2] / wxn[1], wxn[1]))
        for name, rate, secs in rows:
            print(f"  {name:<42} {rate:8.0f} /s   ({secs:7.1f} s)")
        if "read_pool_cpu" in new:
            print(f"  (ours with workers: {new['read_pool_cpu']:.1f} CPU s in all processes; "
                  f"wikiextractor {args.workers}: {wxn[0]:.1f} CPU s)" if wxn else "")
        print(f"  wikiextractor wrote {wx1[2]} documents, ours {n}")
        if old:
            same, total = _agreement(tmp / "new", tmp / "old")
            print(f"  output identical to before for {same} of {total} articles ({same / total:.1%})")

        print("\n== converting one article, by size of wikitext (ms, CPU)")
        print("  size KB   " + "".join(f"{kb:>9}" for kb in SIZES_KB))
        print("  ours      " + "".join(f"{new['per_size_ms'][str(kb)] if str(kb) in new['per_size_ms'] else new['per_size_ms'][kb]:9.1f}" for kb in SIZES_KB))
        if old:
            print("  before    " + "".join(f"{old['per_size_ms'][str(kb)]:9.1f}" for kb in SIZES_KB))
        per_kb = [new["per_size_ms"][str(kb)] / kb for kb in SIZES_KB]
        print("  ours ms/KB" + "".join(f"{v:9.3f}" for v in per_kb) + "   (flat = linear)")

        d = new["clean_docs"]
        print("\n== cleaning (clean_corpus): documents per second")
        print(f"  {'ours, 1 process':<42} {d / new['clean_cpu']:8.0f} /s   ({new['clean_cpu']:7.1f} CPU s)")
        if "clean_pool_wall" in new:
            print(f"  {f'ours, {args.workers} workers (wall)':<42} {d / new['clean_pool_wall']:8.0f} /s   "
                  f"({new['clean_pool_wall']:7.1f} s; {new['clean_pool_cpu']:.1f} CPU s in all processes)")
        if old:
            print(f"  {'before, 1 process':<42} {old['clean_docs'] / old['clean_cpu']:8.0f} /s   ({old['clean_cpu']:7.1f} CPU s)")
            print(f"  speed-up per core: {old['clean_cpu'] / new['clean_cpu']:.1f}x; same documents kept: "
                  f"{new['clean_kept'] == old['clean_kept']}; chunks {new['clean_chunks']} vs {old['clean_chunks']}; "
                  f"drops {new['clean_drops']} vs {old['clean_drops']}")

        print("\n== memory")
        small = tmp / "small.xml.bz2"
        write_dump(small, max(200, args.articles // 8), long_share=args.long_share)
        print(f"  peak RSS streaming the reader: {_stream_rss(ROOT, small):.0f} MB for {max(200, args.articles // 8)} "
              f"articles, {_stream_rss(ROOT, dump):.0f} MB for {args.articles}")
        print(f"  peak RSS of the measuring process (rows and frames held): ours {new['peak_rss_mb']:.0f} MB"
              + (f", before {old['peak_rss_mb']:.0f} MB" if old else ""))


if __name__ == "__main__":
    main()
