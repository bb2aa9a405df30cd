"""Benchmark: the corpus stages on a synthetic Wikipedia dump, side by side with the references.

Run from the repository root (wikiextractor is installed for the benchmark only):

    pip install wikiextractor
    python benchmarks/bench_corpus.py                   # 2,000 articles, 3-4 minutes on 2 idle cores
    python benchmarks/bench_corpus.py --articles 8000   # bigger dump
    python benchmarks/bench_corpus.py --workers 4       # pool size (default: the CPUs available)
    python benchmarks/bench_corpus.py --baseline-ref ""  # skip the "before" columns

One run, one machine:

1. writes a dump in the real export schema (``benchmarks/corpus_dump.py``: templates, links,
   refs, tables, categories, redirects, other namespaces, duplicates, 1 % long articles of
   100-300 KB of wikitext);
2. reads it with our reader (``iter_dump_articles``) and cleans the articles (``clean_corpus``),
   each with 1 worker and with ``--workers`` processes, at three dump sizes (the first 1/8, 1/2
   and all of the articles), every configuration in a fresh process so its peak memory is its
   own; the reader streams (rows are counted, not kept, as a consumer writing them out would);
3. reads the dump with ``wikiextractor`` (``--processes 1``, then ``--workers``);
4. times converting one article by size (5 KB ... 300 KB of wikitext);
5. "before": the reader and cleaning at ``--baseline-ref`` (default: the commit before the
   corpus throughput work), exported with ``git archive`` into a temporary folder and run in a
   subprocess, plus how often old and new output agree. The old reader is quadratic in the
   length of a page (10 s for one 300 KB article), so it reads the first
   ``--baseline-read-articles`` (400) articles; the old cleaning gets the same documents as ours. "x the old rate" is computed from the
   two single-process CPU times of this run.

Single-process figures are CPU seconds (``time.process_time``), steadier than wall time on a
shared machine; pool figures are wall seconds with the CPU seconds of all processes beside them.
Peak memory is the maximum resident set size: of the measuring process (``getrusage``), and of
the largest worker (its ``VmHWM``, sampled while it runs). The load average is printed before and after: on a
machine shared with other work the pool's speed-up is what the free cores allowed.

Goals (issue 9): cost per article linear in its length; our reader at least as fast as
wikiextractor on one core; cleaning at least 3x the old rate per core; both stages over a
process pool, with memory flat in the number of articles.
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
import threading
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


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _WorkerPeak(threading.Thread):
    """The largest peak RSS (VmHWM) of this process's children, sampled while they run.

    getrusage(RUSAGE_CHILDREN) would report the parent's own size: a spawned worker starts as a
    fork of the parent and is counted at that size before it execs a fresh interpreter."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self._done.wait(0.1):
            for status in glob.glob("/proc/[0-9]*/status"):
                try:
                    fields = dict(line.split(":", 1) for line in Path(status).read_text().splitlines() if ":" in line)
                except OSError:
                    continue
                if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    self.peak_kb = max(self.peak_kb, int(fields["VmHWM"].split()[0]))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_kb / 1024


_WORKERS = _WorkerPeak()


def _peaks() -> dict:
    return {
        "rss_parent_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_worker_mb": _WORKERS.stop(),
    }


def measure(dump: str, workers: int, out_dir: str, what: str, limit: int | None) -> dict:
    import pandas as pd

    from instruct_global.languages import get_language
    from instruct_global.lib.corpus import wikipedia
    from instruct_global.lib.corpus.cleaning import CleaningConfig, clean_corpus
    from instruct_global.lib.corpus.documents import documents_frame
    from instruct_global.lib.corpus.langid import identify

    res: dict = {}
    if what == "read":  # one process, rows kept: the texts to compare with the baseline
        t = time.process_time()
        rows = list(wikipedia.iter_dump_articles(dump, "yor", limit))
        res["read_cpu"] = time.process_time() - t
        res["articles"] = len(rows)
        with open(Path(out_dir) / "texts.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"t": r["title"], "x": r["text"]}, ensure_ascii=False) + "\n")
        if limit is None:
            documents_frame(rows, extra_columns=("page_id", "wiki")).to_parquet(Path(out_dir) / "docs.parquet")
    if what == "stream":  # rows counted, not kept
        kwargs = {"workers": workers} if workers > 1 else {}
        c0, w0, t = _cpu_children(), time.time(), time.process_time()
        res["articles"] = sum(1 for _ in wikipedia.iter_dump_articles(dump, "yor", limit, **kwargs))
        res["wall"] = time.time() - w0
        res["cpu"] = time.process_time() - t + _cpu_children() - c0
    if what == "sizes":
        rng = random.Random(7)
        res["per_size_ms"] = {}
        for kb in SIZES_KB:
            text = article_wikitext(rng, "Ìbàdàn", kb * 1000)
            reps = max(1, int(200 / kb))
            t = time.process_time()
            for _ in range(reps):
                wikipedia.wikitext_to_text(text)
            res["per_size_ms"][kb] = (time.process_time() - t) / reps * 1000
    if what == "clean":
        docs = pd.read_parquet(Path(out_dir) / "docs.parquet")
        docs = docs.head(limit) if limit else docs
        lang = get_language("yor")
        clean_corpus(docs.head(3), lang)  # warm the language models: those for long texts ...
        identify("Ìlú Èkó jẹ́ ìlú ńlá.", lang)  # ... and those lingua loads for short ones
        res["rss_input_mb"] = _rss_now_mb()  # the input frame and the libraries, before cleaning
        res["input_text_mb"] = float(docs["text"].str.len().sum()) / 1e6
        config = CleaningConfig(workers=workers) if workers > 1 else None
        c0, w0, t = _cpu_children(), time.time(), time.process_time()
        result = clean_corpus(docs, lang, config)
        res["wall"] = time.time() - w0
        res["cpu"] = time.process_time() - t + _cpu_children() - c0
        res["docs"] = len(docs)
        res["kept"] = sorted(set(result.clean["doc_id"]))
        res["chunks"] = len(result.clean)
        res["drops"] = result.drop_counts
    if what == "write":  # the wikipedia_articles asset's path: the dump to a partition file, in batches
        from instruct_global.lib.common.frame_stream import ParquetSink
        from instruct_global.lib.corpus.documents import documents_schema, write_documents
        from instruct_global.lib.corpus.wikipedia import WIKIPEDIA_EXTRA_COLUMNS as WIKIPEDIA_EXTRA

        res["rss_ready_mb"] = _rss_now_mb()
        kwargs = {"workers": workers} if workers > 1 else {}
        sink = ParquetSink(Path(out_dir) / f"partition_{limit}.parquet", documents_schema(WIKIPEDIA_EXTRA))
        w0 = time.time()
        written = write_documents(wikipedia.iter_dump_articles(dump, "yor", limit, **kwargs), sink, WIKIPEDIA_EXTRA)
        sink.commit()
        res["wall"], res["articles"] = time.time() - w0, written.count
    if what == "clean_stream":  # the clean_documents asset's path: Parquet in, Parquet out, in batches
        from instruct_global.lib.common.frame_stream import ParquetSink, ParquetSource, schema_with
        from instruct_global.lib.corpus.cleaning import (
            CLEAN_ARROW_COLUMNS,
            REJECT_ARROW_COLUMNS,
            clean_corpus_stream,
        )

        lang = get_language("yor")
        source = ParquetSource([Path(out_dir) / f"partition_{limit}.parquet"])
        clean_corpus(next(source.iter_frames(3)), lang)  # warm the language models (3 rows read, not all)
        identify("Ìlú Èkó jẹ́ ìlú ńlá.", lang)
        res["rss_ready_mb"] = _rss_now_mb()
        clean_sink = ParquetSink(Path(out_dir) / "clean_stream.parquet", schema_with(source.schema, CLEAN_ARROW_COLUMNS))
        rejects_sink = ParquetSink(Path(out_dir) / "rejects_stream.parquet",
                                   schema_with(source.schema, REJECT_ARROW_COLUMNS))
        config = CleaningConfig(workers=workers) if workers > 1 else None
        c0, w0, t = _cpu_children(), time.time(), time.process_time()
        summary = clean_corpus_stream(source, lang, config, clean_sink, rejects_sink)
        clean_sink.commit()
        rejects_sink.commit()
        res["wall"] = time.time() - w0
        res["cpu"] = time.process_time() - t + _cpu_children() - c0
        res["docs"], res["chunks"] = source.num_rows, len(summary.n_tokens)
        res["kept"] = sorted(set(pd.read_parquet(clean_sink.path, columns=["doc_id"])["doc_id"]))
    res.update(_peaks())
    return res


def _run_measure(root: Path, dump: Path, workers: int, out_dir: Path, what: str, limit: int | None = None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, __file__, "--measure", str(dump), "--workers", str(workers), "--out", str(out_dir),
           "--what", what] + (["--limit", str(limit)] if limit else [])
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed ({root}: {what}, {workers} workers, limit {limit}, exit "
                         f"{proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
    return same, min(len(new), len(old))  # the old reader may have read only the first articles


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--long-share", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=_default_workers(), help="pool size (default: CPUs available)")
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE)
    parser.add_argument("--baseline-read-articles", type=int, default=400,
                        help="the old reader is quadratic on long pages: it reads this many articles (0: all)")
    parser.add_argument("--measure")
    parser.add_argument("--out")
    parser.add_argument("--what", default="read")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    if args.measure:
        _WORKERS.start()
        print(json.dumps(measure(args.measure, args.workers, args.out, args.what, args.limit)))
        return

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_corpus_") as tmp_name:
        tmp = Path(tmp_name)
        dump = tmp / "yowiki-bench-pages-articles-multistream.xml.bz2"
        t = time.time()
        counts = write_dump(dump, args.articles, long_share=args.long_share)
        print(f"dump: {counts['articles']} articles ({counts['long_articles']} of 100-300 KB), "
              f"{counts['redirects']} redirects, {counts['other_namespace']} other-namespace pages, "
              f"{counts['duplicates']} duplicates; {counts['bytes'] / 1e6:.1f} MB of wikitext, "
              f"{dump.stat().st_size / 1e6:.1f} MB bz2 ({time.time() - t:.0f} s to write)")
        n_workers = max(1, args.workers)
        print(f"machine: {os.cpu_count()} CPUs ({_default_workers()} available to this process), load average "
              f"{_load()} at the start; pools use {n_workers} workers\n", flush=True)

        new_dir = tmp / "new"
        new = _run_measure(ROOT, dump, 1, new_dir, "read")
        new.update(_run_measure(ROOT, dump, 1, new_dir, "sizes"))
        sizes = sorted({max(1, new["articles"] // 8), max(1, new["articles"] // 2), new["articles"]})
        grid: dict[tuple[str, int, int], dict] = {}
        for n in sizes:
            for w in sorted({1, n_workers}):
                grid[("stream", n, w)] = _run_measure(ROOT, dump, w, new_dir, "stream", n)
                grid[("clean", n, w)] = _run_measure(ROOT, dump, w, new_dir, "clean", n)
            grid[("write", n, n_workers)] = _run_measure(ROOT, dump, n_workers, new_dir, "write", n)
            for w in sorted({1, n_workers}):
                grid[("clean_stream", n, w)] = _run_measure(ROOT, dump, w, new_dir, "clean_stream", n)
        base_root = _baseline_root(args.baseline_ref, tmp)
        old: dict = {}
        if base_root is not None:
            old_dir = tmp / "old"
            old = _run_measure(base_root, dump, 1, old_dir, "read", args.baseline_read_articles or None)
            old.update(_run_measure(base_root, dump, 1, old_dir, "sizes"))
            shutil.copy(new_dir / "docs.parquet", old_dir / "docs.parquet")  # same input for both cleanings
            old_clean = _run_measure(base_root, dump, 1, old_dir, "clean")
        wx1 = _wikiextractor(dump, 1, tmp / "wx1")
        wxn = _wikiextractor(dump, n_workers, tmp / "wxn") if n_workers > 1 else None

        full = new["articles"]
        print("== reader: articles per second (1 process: CPU s; pools: wall s, CPU s of all processes)")
        rows = [("ours, 1 process (rows kept)", full / new["read_cpu"], new["read_cpu"])]
        s1 = grid[("stream", full, 1)]
        rows.append(("ours, 1 process (streamed)", full / s1["cpu"], s1["cpu"]))
        rows.append(("ours, 1 process (streamed, wall)", full / s1["wall"], s1["wall"]))
        if n_workers > 1:
            sn = grid[("stream", full, n_workers)]
            rows.append((f"ours, {n_workers} workers (wall)", full / sn["wall"], sn["wall"]))
        if old:
            rows.append((f"before (mwparserfromhell), 1 process, {old['articles']} articles",
                         old["articles"] / old["read_cpu"], old["read_cpu"]))
        rows.append(("wikiextractor --processes 1", wx1[2] / wx1[0], wx1[0]))
        if wxn:
            rows.append((f"wikiextractor --processes {n_workers} (wall)", wxn[2] / wxn[1], wxn[1]))
        for name, rate, secs in rows:
            print(f"  {name:<42} {rate:8.0f} /s   ({secs:7.1f} s)")
        if n_workers > 1:
            print(f"  (ours with {n_workers} workers: {sn['cpu']:.1f} CPU s in all processes"
                  + (f"; wikiextractor {n_workers}: {wxn[0]:.1f} CPU s)" if wxn else ")"))
            print(f"  speed-up of the pool (wall): {s1['wall'] / sn['wall']:.2f}x over 1 process (wall)")
        print(f"  wikiextractor wrote {wx1[2]} documents, ours {full}")
        if old:
            same, total = _agreement(new_dir, tmp / "old")
            print(f"  output identical to before for {same} of {total} articles read by both ({same / total:.1%})")

        print("\n== converting one article, by size of wikitext (ms, CPU)")
        print("  size KB   " + "".join(f"{kb:>9}" for kb in SIZES_KB))
        print("  ours      " + "".join(f"{new['per_size_ms'][str(kb)]:9.1f}" for kb in SIZES_KB))
        if old:
            print("  before    " + "".join(f"{old['per_size_ms'][str(kb)]:9.1f}" for kb in SIZES_KB))
        per_kb = [new["per_size_ms"][str(kb)] / kb for kb in SIZES_KB]
        print("  ours ms/KB" + "".join(f"{v:9.3f}" for v in per_kb) + "   (flat = linear)")

        c1 = grid[("clean", full, 1)]
        d = c1["docs"]
        print("\n== cleaning (clean_corpus): documents per second")
        print(f"  {'ours, 1 process':<42} {d / c1['cpu']:8.0f} /s   ({c1['cpu']:7.1f} CPU s)")
        print(f"  {'ours, 1 process (wall)':<42} {d / c1['wall']:8.0f} /s   ({c1['wall']:7.1f} s)")
        if n_workers > 1:
            cn = grid[("clean", full, n_workers)]
            print(f"  {f'ours, {n_workers} workers (wall)':<42} {d / cn['wall']:8.0f} /s   "
                  f"({cn['wall']:7.1f} s; {cn['cpu']:.1f} CPU s in all processes)")
            print(f"  speed-up of the pool (wall): {c1['wall'] / cn['wall']:.2f}x over 1 process (wall)")
        if old:
            print(f"  {'before, 1 process':<42} {old_clean['docs'] / old_clean['cpu']:8.0f} /s   "
                  f"({old_clean['cpu']:7.1f} CPU s)")
            print(f"  per core: {old_clean['cpu'] / c1['cpu']:.2f}x the old rate; same documents kept: "
                  f"{c1['kept'] == old_clean['kept']}; chunks {c1['chunks']} vs {old_clean['chunks']}; "
                  f"drops {c1['drops']} vs {old_clean['drops']}")
        if n_workers > 1:
            same_out = grid[("clean", full, n_workers)]["kept"] == c1["kept"]
            print(f"  {n_workers} workers keep the same documents as 1: {same_out}")

        print("\n== memory: peak RSS in MB (this process / largest worker), by dump size")
        print(f"  {'articles':>9} {'text MB':>8} | {'read 1w':>9} {f'read {n_workers}w':>13} | "
              f"{'clean 1w':>9} {f'clean {n_workers}w':>13} | {'clean: input loaded':>19} {'working 1w':>10}")
        for n in sizes:
            r1, c1n = grid[("stream", n, 1)], grid[("clean", n, 1)]
            rn, cnn = grid[("stream", n, n_workers)], grid[("clean", n, n_workers)]
            pool_r = f"{rn['rss_parent_mb']:.0f}/{rn['rss_worker_mb']:.0f}" if n_workers > 1 else "-"
            pool_c = f"{cnn['rss_parent_mb']:.0f}/{cnn['rss_worker_mb']:.0f}" if n_workers > 1 else "-"
            print(f"  {n:>9} {c1n['input_text_mb']:>8.1f} | {r1['rss_parent_mb']:>9.0f} {pool_r:>13} | "
                  f"{c1n['rss_parent_mb']:>9.0f} {pool_c:>13} | {c1n['rss_input_mb']:>19.0f} "
                  f"{c1n['rss_parent_mb'] - c1n['rss_input_mb']:>10.0f}")
        print("  (read: rows streamed; clean: its input frame is loaded first, 'working' = peak - loaded;"
              " its output frame is part of the peak)")
        if old:
            print(f"  before, {full} articles: reader with rows kept {old['rss_parent_mb']:.0f} MB (ours "
                  f"{new['rss_parent_mb']:.0f}), clean 1w {old_clean['rss_parent_mb']:.0f} MB "
                  f"(working {old_clean['rss_parent_mb'] - old_clean['rss_input_mb']:.0f})")

        print("\n== the stages as the assets run them (wikipedia_articles writes its partition a batch of articles at")
        print("   a time; clean_documents reads it from Parquet and writes chunks and rejects in batches):")
        print("   peak RSS in MB, and 'working' = peak - RSS once the libraries and models are loaded")
        print(f"  {'articles':>9} {'text MB':>8} | {f'write {n_workers}w':>10} {'working':>8} | "
              f"{'clean 1w':>9} {'working':>8} {f'clean {n_workers}w':>13} | {'clean 1w s':>10} "
              f"{f'{n_workers}w s':>7} {'speed-up':>8}")
        for n in sizes:
            wr, s1n, snn = grid[("write", n, n_workers)], grid[("clean_stream", n, 1)], grid[("clean_stream", n, n_workers)]
            pool_c = f"{snn['rss_parent_mb']:.0f}/{snn['rss_worker_mb']:.0f}" if n_workers > 1 else "-"
            print(f"  {n:>9} {grid[('clean', n, 1)]['input_text_mb']:>8.1f} | {wr['rss_parent_mb']:>10.0f} "
                  f"{wr['rss_parent_mb'] - wr['rss_ready_mb']:>8.0f} | {s1n['rss_parent_mb']:>9.0f} "
                  f"{s1n['rss_parent_mb'] - s1n['rss_ready_mb']:>8.0f} {pool_c:>13} | {s1n['wall']:>10.1f} "
                  f"{snn['wall']:>7.1f} {s1n['wall'] / snn['wall']:>7.2f}x")
        same_stream = grid[("clean_stream", full, 1)]["kept"] == grid[("clean", full, 1)]["kept"]
        print(f"  streamed cleaning keeps the same documents as cleaning in memory: {same_stream}")
        print(f"\nload average at the end: {_load()}; benchmark took {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
