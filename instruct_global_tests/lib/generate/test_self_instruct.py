"""Self-instruct bootstrapping: seed file, prompt, numbered-list parser and heuristic filters."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from instruct_global.languages import LANGUAGES, get_language
from instruct_global.lib.common.categories import CATEGORIES, DEFAULT_MIX
from instruct_global.lib.common.llm_types import ChatRequest, ChatResult
from instruct_global.lib.generate.self_instruct import (
    FilterConfig,
    SeedInstance,
    SeedTask,
    SeedTaskError,
    build_self_instruct_prompt,
    category_of,
    filter_instruction,
    format_task,
    is_programming_task,
    load_seed_tasks,
    parse_numbered_instructions,
    sample_prompt_examples,
)
from instruct_global.lib.generate.self_instruct_loop import SelfInstructSettings, run_self_instruct
from instruct_global_tests.conftest import REPO_ROOT

SEED_FILE = REPO_ROOT / "data" / "seed_tasks" / "seed_tasks.jsonl"

# ---------------------------------------------------------------- the shipped seed file


@pytest.fixture(scope="module")
def shipped_seeds() -> list[SeedTask]:
    return load_seed_tasks(SEED_FILE)


def test_shipped_seed_file_loads_with_unique_ids(shipped_seeds: list[SeedTask]) -> None:
    assert len(shipped_seeds) >= 110
    assert len({s.id for s in shipped_seeds}) == len(shipped_seeds)
    assert len({s.instruction.casefold() for s in shipped_seeds}) == len(shipped_seeds)


def test_shipped_seeds_cover_every_category(shipped_seeds: list[SeedTask]) -> None:
    counts = Counter(s.category for s in shipped_seeds)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 8, counts


def test_every_shipped_seed_passes_the_filters(shipped_seeds: list[SeedTask]) -> None:
    for seed in shipped_seeds:
        for inst in seed.instances:
            task = {"instruction": seed.instruction, "input": inst.input, "output": inst.output,
                    "category": seed.category}  # fmt: skip
            assert filter_instruction(task) == (True, None), seed.id


def test_category_guess_mostly_agrees_with_the_seed_labels(shipped_seeds: list[SeedTask]) -> None:
    agree = sum(
        category_of({"instruction": s.instruction, "input": s.instances[0].input}) == s.category
        for s in shipped_seeds
    )
    assert agree / len(shipped_seeds) >= 0.85


# ---------------------------------------------------------------- loading errors


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(**fields: object) -> str:
    row = {"id": "t1", "instruction": "Name three rivers in Nigeria.",
           "instances": [{"input": "", "output": "Niger, Benue and Ogun."}], "category": "question-answer"}  # fmt: skip
    row.update(fields)
    return json.dumps({k: v for k, v in row.items() if v is not ...}, ensure_ascii=False)


def test_load_minimal_file_with_blank_lines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(
        "\ufeff" + _row() + "\n\n" + _row(id=2, name="x", category="open_qa") + "\n", encoding="utf-8"
    )
    tasks = load_seed_tasks(path)
    assert tasks == [
        SeedTask("t1", "Name three rivers in Nigeria.", (SeedInstance("", "Niger, Benue and Ogun."),),
                 "question-answer"),
        SeedTask("2", "Name three rivers in Nigeria.", (SeedInstance("", "Niger, Benue and Ogun."),),
                 "question-answer", "x"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"seeds.jsonl:2: not valid JSON"),
        ('["a list"]', r"seeds.jsonl:2: expected a JSON object"),
        (_row(id=...), r"seeds.jsonl:2: field 'id'"),
        (_row(id=""), r"seeds.jsonl:2: field 'id'"),
        (_row(id="t1"), r"seeds.jsonl:2: field 'id' 't1' repeats line 1"),
        (_row(id="t2", instruction=" "), r"seeds.jsonl:2: field 'instruction'"),
        (_row(id="t2", instances=[]), r"seeds.jsonl:2: field 'instances'"),
        (_row(id="t2", instances="text"), r"seeds.jsonl:2: field 'instances'"),
        (_row(id="t2", instances=["text"]), r"seeds.jsonl:2: field 'instances\[0\]'"),
        (_row(id="t2", instances=[{"input": "", "output": ""}]), r"seeds.jsonl:2: field 'instances\[0\].output'"),
        (_row(id="t2", instances=[{"input": 3, "output": "o"}]), r"seeds.jsonl:2: field 'instances\[0\].input'"),
        (_row(id="t2", category=...), r"seeds.jsonl:2: field 'category'"),
        (_row(id="t2", category="poetry"), r"seeds.jsonl:2: field 'category': unknown task category"),
        (_row(id="t2", name=5), r"seeds.jsonl:2: field 'name'"),
    ],
)  # fmt: skip
def test_load_errors_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path, [_row(), line])
    with pytest.raises(SeedTaskError, match=message):
        load_seed_tasks(path)


def test_load_reports_every_error_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, [_row(id="a", category="x"), "{", _row(id="b", instruction="")])
    with pytest.raises(SeedTaskError) as info:
        load_seed_tasks(path)
    text = str(info.value)
    assert (
        ":1: field 'category'" in text and ":2: not valid JSON" in text and ":3: field 'instruction'" in text
    )


def test_load_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SeedTaskError, match="holds no seed tasks"):
        load_seed_tasks(_write(tmp_path, ["", "  "]))


def test_load_original_self_instruct_format(tmp_path: Path) -> None:
    path = _write(tmp_path, [_row(category=..., is_classification=True), _row(id="t2", category=...)])
    with pytest.raises(SeedTaskError):
        load_seed_tasks(path)
    tasks = load_seed_tasks(path, require_category=False)
    assert [t.category for t in tasks] == ["classification", "generation"]


# ---------------------------------------------------------------- sampling


def _seeds(n: int, category: str = "generation") -> list[SeedTask]:
    return [
        SeedTask(f"s{i}", f"Seed instruction {i}", (SeedInstance("", f"out {i}"),), category)
        for i in range(n)
    ]


MACHINE = [{"instruction_en": f"Machine {i}", "input_en": "", "output_en": f"m{i}", "category": "chat"}
           for i in range(5)]  # fmt: skip


@pytest.mark.parametrize(
    ("n_seeds", "n_machine_avail", "expected_seed", "expected_machine"),
    [(20, 5, 6, 2), (20, 1, 7, 1), (20, 0, 8, 0), (3, 0, 3, 0), (3, 5, 3, 2), (0, 5, 0, 2)],
)
def test_sample_prompt_examples_counts(
    n_seeds: int, n_machine_avail: int, expected_seed: int, expected_machine: int
) -> None:
    examples = sample_prompt_examples(_seeds(n_seeds), MACHINE[:n_machine_avail], rng=random.Random(1))
    origins = Counter(e["origin"] for e in examples)
    assert origins["seed"] == expected_seed and origins["machine"] == expected_machine
    assert len({e["instruction"] for e in examples}) == len(examples)
    machine = [e for e in examples if e["origin"] == "machine"]
    assert all(e["instruction"].startswith("Machine") and e["category"] == "chat" for e in machine)


def test_sample_prompt_examples_is_deterministic_per_rng() -> None:
    a = sample_prompt_examples(_seeds(30), MACHINE, rng=random.Random(7))
    b = sample_prompt_examples(_seeds(30), MACHINE, rng=random.Random(7))
    assert a == b


def test_sample_prompt_examples_prefers_a_category() -> None:
    seeds = _seeds(40) + [
        SeedTask(f"r{i}", f"Rewrite {i}", (SeedInstance("x", "y"),), "rewrite") for i in range(4)
    ]
    for seed in range(20):
        examples = sample_prompt_examples(seeds, [], rng=random.Random(seed), prefer_category="rewriting")
        assert sum(e["category"] == "rewrite" for e in examples) >= 4


# ---------------------------------------------------------------- prompt

EXAMPLES = [
    {"instruction": "List three uses of cassava.", "input": "", "output": "garri, fufu, starch", "category": "brainstorming"},
    {"instruction": "Classify the review.", "input": "Great ### service", "output": "positive", "category": "classification"},
]  # fmt: skip


@pytest.mark.parametrize("key", sorted(LANGUAGES))
def test_self_instruct_prompt_names_the_language(key: str) -> None:
    language = LANGUAGES[key]
    text = build_self_instruct_prompt(EXAMPLES, language, 8, None).messages[-1].content
    assert f"{language.name} speakers" in text
    assert f" {language.key} " not in text


def test_self_instruct_prompt_format() -> None:
    request = build_self_instruct_prompt(EXAMPLES, get_language("hau"), 8, "summarization")
    text = request.messages[-1].content
    assert (
        "1. Category: brainstorming\n1. Instruction: List three uses of cassava.\n1. Input:\n<noinput>\n1. Output:\ngarri"
        in text
    )
    assert "###\n2. Category: classification" in text
    assert "Great ## service" in text  # an example cannot fake a separator
    assert "tasks 3 to 10" in text
    assert '2. Every new task is of the category "summarisation"' in text
    assert "8. The Category line of every new task is summarisation." in text
    assert "No programming tasks." in text
    assert request.stop == ("11. Instruction:", "11. Category:")
    assert request.temperature == 1.0
    allowed = build_self_instruct_prompt(EXAMPLES, get_language("hau"), 8, None, allow_programming=True)
    assert "No programming" not in allowed.messages[-1].content
    assert "2. Vary the kind of task across these categories: generation, question-answer" in (
        allowed.messages[-1].content
    )
    with pytest.raises(ValueError):
        build_self_instruct_prompt(EXAMPLES, get_language("hau"), 0, None)


def test_formatted_examples_parse_back() -> None:
    text = "\n###\n".join(format_task(i, ex) for i, ex in enumerate(EXAMPLES, start=1))
    result = parse_numbered_instructions(text, "stop", 1)
    assert [(t["instruction"], t["input"], t["category"]) for t in result.tasks] == [
        ("List three uses of cassava.", "", "brainstorming"),
        ("Classify the review.", "Great ## service", "classification"),
    ]


# ---------------------------------------------------------------- parsing


def _item(n: int | None, instruction: str, output: str | None = "An answer.", inp: str = "<noinput>",
          category: str | None = "generation") -> str:  # fmt: skip
    p = f"{n}. " if n is not None else ""
    lines = [f"{p}Category: {category}"] if category else []
    lines += [f"{p}Instruction: {instruction}", f"{p}Input:", inp]
    if output is not None:
        lines += [f"{p}Output:", output]
    return "\n".join(lines)


def _instructions(text: str, finish: str | None = "stop", start: int = 3) -> tuple[list[str], int, int]:
    result = parse_numbered_instructions(text, finish, start)
    return [t["instruction"] for t in result.tasks], result.malformed, result.truncated_dropped


WELL_FORMED = "\n###\n".join(_item(n, f"Task {n}.") for n in (3, 4, 5))


@pytest.mark.parametrize(
    ("text", "finish", "expected"),
    [
        (WELL_FORMED, "stop", (["Task 3.", "Task 4.", "Task 5."], 0, 0)),
        ("###\n" + WELL_FORMED + "\n###", "stop", (["Task 3.", "Task 4.", "Task 5."], 0, 0)),
        ("Sure! Here are new tasks:\n\n" + WELL_FORMED + "\n\nI hope these help.", "stop",
         (["Task 3.", "Task 4.", "Task 5."], 0, 0)),
        # Missing numbers, missing separators, duplicated numbers.
        ("\n###\n".join(_item(None, f"Task {n}.") for n in (3, 4)), "stop", (["Task 3.", "Task 4."], 0, 0)),
        ("\n".join(_item(n, f"Task {n}.") for n in (3, 4, 5)), "stop", (["Task 3.", "Task 4.", "Task 5."], 0, 0)),
        ("\n".join(_item(None, f"Task {n}.", category=None) for n in (3, 4)), "stop", (["Task 3.", "Task 4."], 0, 0)),
        ("\n###\n".join([_item(3, "Task A."), _item(3, "Task B."), _item(3, "Task C.")]), "stop",
         (["Task A.", "Task B.", "Task C."], 0, 0)),
        ("\n".join([_item(7, "Task A.", category=None), _item(7, "Task B.", category=None)]), "stop",
         (["Task A.", "Task B."], 0, 0)),
        # An item missing its Output, or its Instruction, is malformed; the others survive.
        ("\n###\n".join([_item(3, "Task 3."), _item(4, "Task 4.", output=None), _item(5, "Task 5.")]), "stop",
         (["Task 3.", "Task 5."], 1, 0)),
        ("3. Category: chat\n3. Input:\nx\n3. Output:\ny\n###\n" + _item(4, "Task 4."), "stop", (["Task 4."], 1, 0)),
        ("3. Instruction:\n3. Output:\ny\n###\n" + _item(4, "Task 4."), "stop", (["Task 4."], 1, 0)),
        # Truncation: the last item is dropped when the model ran out of tokens...
        (WELL_FORMED + "\n###\n6. Category: chat\n6. Instruction: Reply to the mess", "length",
         (["Task 3.", "Task 4.", "Task 5."], 0, 1)),
        (WELL_FORMED, "length", (["Task 3.", "Task 4."], 0, 1)),
        (WELL_FORMED, "max_tokens", (["Task 3.", "Task 4."], 0, 1)),
        # ... unless a separator shows it was finished; a cut header line is no item at all.
        (WELL_FORMED + "\n###\n", "length", (["Task 3.", "Task 4.", "Task 5."], 0, 0)),
        (WELL_FORMED + "\n###\n6. Instr", "length", (["Task 3.", "Task 4.", "Task 5."], 0, 0)),
        # Completion-style answer that continues mid-item: the lead text is the instruction.
        (" Task 3.\n3. Input:\n<noinput>\n3. Output:\nok\n###\n" + _item(4, "Task 4."), "stop",
         (["Task 3.", "Task 4."], 0, 0)),
        # Markdown decoration around the headers.
        ("**3. Instruction:** Task 3.\n**3. Input:** <noinput>\n**3. Output:** fine", "stop", (["Task 3."], 0, 0)),
        ("### 3. Instruction: Task 3.\n3. Output: ok\n### 4. Instruction: Task 4.\n4. Output: ok", "stop",
         (["Task 3.", "Task 4."], 0, 0)),
        ("", "stop", ([], 0, 0)),
        ("   ", "length", ([], 0, 0)),
        ("I am sorry, I cannot do that.", "stop", ([], 0, 0)),
        ("###\n###\n###", "stop", ([], 0, 0)),
        ("Output:\nonly an output", "stop", ([], 1, 0)),
        # a numbered block whose header lost its colon was an attempt at an item: counted
        ("\n###\n".join([_item(3, "Task 3."), "4. Instruction\nlost its colon", _item(5, "Task 5.")]), "stop",
         (["Task 3.", "Task 5."], 1, 0)),
    ],
)  # fmt: skip
def test_parse_numbered_instructions(text: str, finish: str, expected: tuple) -> None:
    assert _instructions(text, finish) == expected


def test_parse_none_text() -> None:
    result = parse_numbered_instructions(None, "length", 1)
    assert (result.tasks, result.malformed, result.truncated_dropped) == ([], 0, 0)


def test_parse_fields_inputs_categories_and_numbers() -> None:
    text = (
        "3. Category: Summarization\n3. Instruction: Summarise the notice.\n3. Input:\nLine one.\nLine two.\n"
        "3. Output:\nA summary\nover two lines.\n###\n"
        "Category: poetry\nInstruction: Write a riddle about a baobab.\nInput: None\nOutput: I am old and wide.\n###\n"
        "9. Instruction: Translate 'Asante' into English.\n9. Input: N/A\n9. Output: Thank you."
    )
    tasks = parse_numbered_instructions(text, "stop", 3).tasks
    assert tasks == [
        {"instruction": "Summarise the notice.", "input": "Line one.\nLine two.", "output": "A summary\nover two lines.",
         "category": "summarisation", "number": 3},
        {"instruction": "Write a riddle about a baobab.", "input": "", "output": "I am old and wide.",
         "category": None, "number": 4},
        {"instruction": "Translate 'Asante' into English.", "input": "", "output": "Thank you.",
         "category": None, "number": 9},
    ]  # fmt: skip


def test_unnumbered_tasks_are_numbered_from_start_index() -> None:
    text = "\n###\n".join(_item(None, f"Task {n}.") for n in range(3))
    assert [t["number"] for t in parse_numbered_instructions(text, "stop", 9).tasks] == [9, 10, 11]


def test_parser_survives_random_garbage() -> None:
    rng = random.Random(0)
    pieces = [
        "###",
        "1. Instruction:",
        "Output:",
        "Input:",
        "\n",
        "2.",
        "**",
        "Category: chat",
        "text ",
        "{",
        "ሰላም",
    ]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        result = parse_numbered_instructions(text, rng.choice(["stop", "length", None]), 1)
        assert result.malformed >= 0 and all(t["instruction"] for t in result.tasks)


# ---------------------------------------------------------------- filters


def _task(instruction: str, output: str = "Some output.", category: str | None = "generation") -> dict:
    return {"instruction": instruction, "input": "", "output": output, "category": category}


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("Name three festivals celebrated in Ghana.", None),
        ("Ṣàlàyé ohun tí òwe yìí túmọ̀ sí.", None),  # accented first letter
        ("ሰላም: what does this Amharic greeting mean?", None),  # Ethiopic first letter
        ("ሰላም የሚለው ቃል ምን ማለት ነው?", "not_english"),  # no word ROUGE-L can see
        ("Éthiopie: name its capital city please.", None),
        ("5 ways to save money on transport.", None),
        ("What is the function of the kidneys?", None),  # not programming
        ("What is the postal code system used for in Kenya?", None),
        ("Explain the dress code for a formal wedding.", None),
        ("Write a short script for a school play about honesty.", None),
        ("Describe the profile of a good teacher.", None),  # "file" only as a word
        ("", "empty_instruction"),
        ("   ", "empty_instruction"),
        ("Hi there", "too_short"),
        ("Hello", "too_short"),
        (" ".join(["word"] * 151), "too_long"),
        ("- List three fruits grown in Kenya.", "leading_punctuation"),
        ('"List three fruits grown in Kenya."', "leading_punctuation"),
        ("¿Which fruits grow in Kenya?", "leading_punctuation"),
        ("Describe the image of the market below.", "blacklisted:image"),
        ("Draw a simple picture of a hut.", "blacklisted:picture"),
        ("Look at the MAP and name the rivers.", "blacklisted:map"),
        ("Go to the website and list the prices.", "blacklisted:go to"),
        ("Compose music for a wedding dance.", "blacklisted:music"),
        ("Create a flowchart of the harvest process.", "blacklisted:flowchart"),
        ("Summarise this video about farming.", "blacklisted:video"),
        ("Write a program that adds two numbers.", "programming"),
        ("Write a Python script that sorts names.", "programming"),
        ("Explain what this code does in simple terms.", "programming"),
        ("Write a function that returns the largest number.", "programming"),
        ("Convert this SQL query into plain English.", "programming"),
        ("How do I debug a crash in my app?", "programming"),
    ],
)  # fmt: skip
def test_filter_instruction(instruction: str, reason: str | None) -> None:
    assert filter_instruction(_task(instruction)) == (reason is None, reason)


def test_filter_allows_programming_when_configured() -> None:
    task = _task("Write a program that adds two numbers.")
    assert filter_instruction(task, FilterConfig(allow_programming=True)) == (True, None)


def test_filter_empty_output_depends_on_category() -> None:
    task = _task("Suggest names for a new bakery in Accra.", output="  ", category="brainstorming")
    assert filter_instruction(task) == (False, "empty_output")
    assert filter_instruction(task, FilterConfig(output_optional_categories=frozenset({"brainstorm"}))) == (
        True,
        None,
    )
    untagged = _task("Suggest names for a new bakery in Accra.", output="", category=None)
    assert filter_instruction(untagged) == (False, "empty_output")


def test_filter_word_bounds_are_configurable_and_read_frame_columns() -> None:
    config = FilterConfig(min_words=5, max_words=6, blacklist=("market",))
    frame_row = {"instruction_en": "Name two rivers.", "input_en": "", "output_en": "Niger, Benue"}
    assert filter_instruction(frame_row, config) == (False, "too_short")
    assert filter_instruction(_task("Name the two largest rivers in Nigeria please."), config) == (
        False,
        "too_long",
    )
    assert filter_instruction(_task("Name the busiest market in Lagos."), config) == (
        False,
        "blacklisted:market",
    )


@pytest.mark.parametrize(
    ("text", "programming"),
    [("Write a computer program to count votes.", True), ("Write code in C++ for a calculator.", True),
     ("Explain the code of conduct for traders.", False), ("Describe the functions of a local council.", False)],
)  # fmt: skip
def test_is_programming_task(text: str, programming: bool) -> None:
    assert is_programming_task(text) is programming


@pytest.mark.parametrize(
    ("task", "category"),
    [
        ({"instruction": "Do X.", "category": "open_qa"}, "question-answer"),
        ({"instruction": "Translate this greeting into Hausa.", "category": "nonsense"}, "translation"),
        ({"instruction": "Summarise the passage in two sentences."}, "summarisation"),
        ({"instruction": "Choose the correct answer.", "input": "Q?\nA) x\nB) y"}, "multiple-choice"),
        ({"instruction": "Classify the headline by topic."}, "classification"),
        ({"instruction": "Extract the dates from the notice."}, "extraction"),
        ({"instruction": "Rewrite the message politely."}, "rewrite"),
        ({"instruction": "Suggest five names for a shop."}, "brainstorming"),
        ({"instruction": "Continue the conversation as the seller."}, "chat"),
        ({"instruction": "Why is the sky blue?"}, "question-answer"),
        ({"instruction": "Compose a poem about the rain."}, "generation"),
    ],
)
def test_category_of(task: dict, category: str) -> None:
    assert category_of(task) == category


def test_parser_drops_items_holding_a_lone_surrogate() -> None:
    text = "1. Instruction: Name a \ud83d fruit grown in Ghana.\n1. Input:\n<noinput>\n1. Output:\nMango.\n###\n"
    result = parse_numbered_instructions(text + text.replace("\ud83d ", "").replace("1.", "2."))
    assert [t["instruction"] for t in result.tasks] == ["Name a fruit grown in Ghana."]
    assert result.malformed == 1


# ---------------------------------------------------------------- the loop

REPEATED_TASK = (
    "9. Category: generation\n9. Instruction: Write a short letter inviting neighbours to a naming ceremony.\n"
    "9. Input:\n<noinput>\n9. Output:\nDear neighbours, please join us on Saturday.\n###\n"
)


def _always(text: str) -> tuple[list[ChatRequest], object]:
    requests: list[ChatRequest] = []

    def complete(batch):
        requests.extend(batch)
        return [ChatResult(texts=[text], finish_reasons=["stop"]) for _ in batch]

    return requests, complete


def test_loop_never_keeps_the_same_task_twice(shipped_seeds: list[SeedTask]) -> None:
    # at threshold 1.0 ROUGE-L lets an exact copy through; ids must stay unique all the same
    _, complete = _always(REPEATED_TASK)
    settings = SelfInstructSettings(target_count=5, prompts_per_round=2, rouge_threshold=1.0,
                                    enforce_category_quotas=False)  # fmt: skip
    result = run_self_instruct(shipped_seeds, get_language("yor"), complete, settings, DEFAULT_MIX)
    assert len(result.instructions) == 1 and result.instructions["instruction_id"].is_unique
    assert result.reasons["duplicate"] == result.seen - 1


def test_loop_stops_when_rounds_keep_nothing(shipped_seeds: list[SeedTask]) -> None:
    requests, complete = _always(REPEATED_TASK)
    settings = SelfInstructSettings(target_count=10, prompts_per_round=2, max_rounds=20, enforce_category_quotas=False)
    result = run_self_instruct(shipped_seeds, get_language("yor"), complete, settings, DEFAULT_MIX)
    # one round keeps the task, three keep nothing: the 16 rounds left would be paid for in vain
    assert len(result.instructions) == 1
    assert (result.rounds, result.requests, len(requests), result.stop_reason) == (4, 8, 8, "stalled")
    assert result.reasons["duplicate"] == 7  # exact copies of the kept task

    _, complete = _always(REPEATED_TASK)
    unbounded = SelfInstructSettings(target_count=10, prompts_per_round=2, max_rounds=6,
                                     enforce_category_quotas=False, max_stalled_rounds=0)  # fmt: skip
    result = run_self_instruct(shipped_seeds, get_language("yor"), complete, unbounded, DEFAULT_MIX)
    assert (result.rounds, result.stop_reason) == (6, "max_rounds")


# ---------------------------------------------------------------- JSON answers (schema mode)


def test_json_schema_prompt_asks_for_json_and_bounds_every_field() -> None:
    from instruct_global.lib.generate.self_instruct import MAX_TASK_FIELD_CHARS, build_self_instruct_prompt

    examples = [{"instruction": "Name a river.", "input": "", "output": "The Niger.", "category": "question-answer"}]
    request = build_self_instruct_prompt(examples, get_language("yor"), 3, "brainstorming", json_schema=True)
    text = request.messages[-1].content
    assert '{"tasks": [{"category": "...", "instruction": "...", "input": "...", "output": "..."}]}' in text
    assert "Write tasks 2 to 4 as JSON" in text and request.stop == ()
    schema = request.response_format["json_schema"]["schema"]
    items = schema["properties"]["tasks"]
    assert items["maxItems"] == 3 and items["items"]["properties"]["category"]["enum"] == ["brainstorming"]
    assert items["items"]["properties"]["output"]["maxLength"] == MAX_TASK_FIELD_CHARS["output"]
    plain = build_self_instruct_prompt(examples, get_language("yor"), 3, None)
    assert plain.response_format is None and plain.stop


@pytest.mark.parametrize(
    ("text", "finish", "tasks", "malformed", "truncated"),
    [
        ('{"tasks": [{"category": "brainstorming", "instruction": "List three crops.", "input": "", '
         '"output": "Yam, maize, cassava."}]}', "stop", 1, 0, 0),
        ('```json\n{"tasks": [{"instruction": "Say hi.", "input": "<noinput>", "output": "Hi."},]}\n```', "stop", 1, 0, 0),
        ('{"tasks": [{"instruction": "", "input": "", "output": "x"}, {"instruction": "A", "output": "B"}]}',
         "stop", 1, 1, 0),
        ('{"tasks": [{"instruction": "Name a city.", "input": "", "output": "Ibadan"}, {"instruction": "Na',
         "length", 1, 0, 1),
        ("Here are some tasks for you to do.", "stop", 0, 1, 0),
        ("", "stop", 0, 0, 0),
        ('{"tasks": [{"instruction": ["not", "text"], "input": "", "output": "x"}]}', "stop", 0, 1, 0),
    ],
)
def test_parse_json_instructions(text: str, finish: str, tasks: int, malformed: int, truncated: int) -> None:
    from instruct_global.lib.generate.self_instruct import parse_json_instructions

    result = parse_json_instructions(text, finish, start_index=7)
    assert (len(result.tasks), result.malformed, result.truncated_dropped) == (tasks, malformed, truncated)
    assert [t["number"] for t in result.tasks] == list(range(7, 7 + tasks))
    for task in result.tasks:
        assert task["instruction"] and task["output"] and task["input"] in ("",)
