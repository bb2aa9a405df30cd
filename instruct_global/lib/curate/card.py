"""The dataset card: Markdown with the Hugging Face YAML header, written beside the dataset."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import yaml

from instruct_global.lib.curate.licenses import HF_LICENSE_IDS, LICENSE_TERMS

_SOURCE_DATASETS = {"wikipedia": "extended|wikipedia", "bbc": "extended|bbc-news"}


@dataclass
class CardInputs:
    lang_key: str
    language: str
    language_code: str  # ISO 639-1 where one exists (the Hub's preference), else ISO 639-3
    rows: pd.DataFrame
    filters: Mapping[str, int]  # drop reason -> rows
    allowed_licenses: Sequence[str]
    rows_in: Mapping[str, int]  # per origin, before filters
    curation: Mapping[str, object] = field(default_factory=dict)  # threshold, histogram, unparsed ...
    notes: Sequence[str] = ()  # known limits of this build (e.g. no translator)
    repository: str = "instruct-global"


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def _table(counts: Mapping[str, int], key: str) -> str:
    if not counts:
        return "_none_"
    lines = [f"| {key} | rows |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return "\n".join(lines)


def _models(rows: pd.DataFrame) -> list[str]:
    lines: list[str] = []
    for role in ("generator", "translator", "judge"):
        if role not in rows:
            continue
        for raw in sorted({v for v in rows[role] if v}):
            try:
                described = json.loads(raw)
                lines.append(f"- {role}: `{described.get('backend')}` / `{described.get('model')}` "
                             f"(params: `{json.dumps(described.get('params', {}), sort_keys=True)}`)")
            except (json.JSONDecodeError, AttributeError):
                lines.append(f"- {role}: {raw}")
    return lines or ["- none recorded"]


def header(inputs: CardInputs) -> dict[str, object]:
    rows = inputs.rows
    licenses = sorted(set(rows["license"])) if not rows.empty else []
    hf = sorted({HF_LICENSE_IDS.get(lic, "other") for lic in licenses}) or ["other"]
    languages = [inputs.language_code]
    if not rows.empty and (rows["instruction_lang"] == "eng").any():
        languages.append("en")
    sources = sorted({_SOURCE_DATASETS.get(s, "original") for s in rows["source"] if s}) if not rows.empty else []
    if not rows.empty and (rows["origin"] != "backtranslation").any():
        sources = sorted({*sources, "original"})
    meta: dict[str, object] = {
        "language": languages,
        "license": hf[0] if len(hf) == 1 else hf,
        "task_categories": ["text-generation", "question-answering"],
        "size_categories": [size_category(len(rows))],
        "source_datasets": sources or ["original"],
        "pretty_name": f"instruct-global {inputs.language} instructions",
        "tags": ["instruction-tuning", "low-resource", inputs.lang_key],
    }
    if "other" in hf:
        meta["license_name"] = "mixed (see the Licences section)"
    return meta


def render_card(inputs: CardInputs) -> str:
    rows = inputs.rows
    origin = rows["origin"].value_counts().to_dict() if not rows.empty else {}
    category = rows["category"].value_counts().to_dict() if not rows.empty else {}
    licenses = rows["license"].value_counts().to_dict() if not rows.empty else {}
    sources = rows.loc[rows["source"] != "", "source"].value_counts().to_dict() if not rows.empty else {}
    datasets = rows.loc[rows["dataset"] != "", "dataset"].value_counts().to_dict() if not rows.empty else {}
    license_lines = [f"- `{lic}` ({n} rows): {LICENSE_TERMS.get(lic, 'as stated by the data owner')}"
                     for lic, n in sorted(licenses.items(), key=lambda kv: -kv[1])] or ["- no rows"]
    curation = inputs.curation
    histogram = curation.get("score_histogram") or {}
    limits = [
        "- Backtranslated pairs: the response is human-written text from the source (not written as an "
        "assistant's answer); the instruction is model-written and may fit it loosely. Self-curation "
        "keeps pairs the judge scored at or above the threshold; a judge can be wrong.",
        "- Template and self-instruct rows are machine-translated from English; review status per row is "
        "in `review_status` (unreviewed rows were not checked by a person).",
        "- Language ID on short texts is unreliable; see the asset checks of the run that built this.",
        *[f"- {note}" for note in inputs.notes],
    ]
    body = [
        f"# instruct-global instruction dataset: {inputs.language} (`{inputs.lang_key}`)",
        "",
        f"{len(rows)} instruction examples in {inputs.language}: template rows filled with the user's "
        "labelled datasets, self-instruct tasks translated from English, and instruction-backtranslated "
        "pairs whose response is a human-written text in the language (Humpback; X-Instruction), kept by "
        "self-curation on a 5-point rubric.",
        "",
        "## Counts",
        "",
        "Per origin (after filters; before filters: "
        + ", ".join(f"{k} {v}" for k, v in sorted(inputs.rows_in.items())) + ")",
        "",
        _table(origin, "origin"),
        "",
        "Per category",
        "",
        _table(category, "category"),
        "",
        "## Sources and licences",
        "",
        _table(sources, "corpus source"),
        "",
        _table(datasets, "user dataset"),
        "",
        *license_lines,
        "",
        f"Allowed licences for this build: {', '.join(f'`{a}`' for a in inputs.allowed_licenses)}. "
        "Rows under any other licence were removed (see Filters).",
        "",
        "## Models",
        "",
        *_models(rows),
        "",
        "## Filters",
        "",
        _table(dict(inputs.filters), "dropped because"),
        "",
    ]
    if curation:
        body += [
            "## Self-curation",
            "",
            f"Threshold: score ≥ {curation.get('threshold')}; judged {curation.get('judged', 0)}, "
            f"kept {curation.get('kept', 0)}, unparsed {curation.get('unparsed', 0)}.",
            "",
            _table({str(k): int(v) for k, v in histogram.items()}, "score"),
            "",
        ]
    body += [
        "## Known limits",
        "",
        *limits,
        "",
        "## Columns",
        "",
        "`id` (stable), `lang`, `category`, `instruction`, `input`, `output`, `instruction_lang`, the English "
        "`*_en` fields, `origin`, provenance (`dataset`, `record_id`, `instruction_id`, `doc_id`, `chunk_id`, "
        "`source`, `source_url`), `license`, `generator` / `translator` / `judge` (JSON), `curation_score`, "
        "`checks`, `review_status`.",
        "",
        "## How to cite",
        "",
        f"Built with {inputs.repository}. Please cite the sources the rows come from (Wikipedia, BBC News, "
        "the user datasets listed above) and the methods:",
        "",
        "```bibtex",
        "@inproceedings{li2024humpback,",
        "  title={Self-Alignment with Instruction Backtranslation},",
        "  author={Li, Xian and Yu, Ping and Zhou, Chunting and Schick, Timo and Levy, Omer and "
        "Zettlemoyer, Luke and Weston, Jason and Lewis, Mike},",
        "  booktitle={ICLR}, year={2024}}",
        "@inproceedings{li2024xinstruction,",
        "  title={X-Instruction: Aligning Language Model in Low-resource Languages with Self-curated "
        "Cross-lingual Instructions},",
        "  author={Li, Chong and Yang, Wen and Zhang, Jiajun and Lu, Jinliang and Wang, Shaonan and Zong, Chengqing},",
        "  booktitle={Findings of ACL}, year={2024}}",
        "```",
        "",
    ]
    front = yaml.safe_dump(header(inputs), sort_keys=False, allow_unicode=True).strip()
    return f"---\n{front}\n---\n\n" + "\n".join(body)
