from __future__ import annotations

import pytest

from instruct_global.languages import LANGUAGES, UnsupportedLanguageError, get_language
from instruct_global.partitions import language_partitions

REQUIRED = {"yor", "hau", "ibo", "pcm", "swh", "amh", "som", "zul"}


def test_registry_has_the_required_languages_and_partitions_follow_it() -> None:
    assert set(LANGUAGES) >= REQUIRED
    assert language_partitions.get_partition_keys() == list(LANGUAGES)


@pytest.mark.parametrize("lang", list(LANGUAGES.values()), ids=list(LANGUAGES))
def test_each_entry_is_consistent(lang) -> None:
    assert len(lang.key) == 3 and lang.key.islower()
    assert lang.script in {"Latn", "Ethi", "Arab"}
    if lang.nllb_code is not None:
        assert lang.nllb_code.endswith("_" + lang.script)


def test_missing_backend_names_language_and_backend() -> None:
    pidgin = get_language("pcm")
    with pytest.raises(UnsupportedLanguageError, match=r"Nigerian Pidgin \(pcm\).*NLLB-200"):
        pidgin.require("nllb_code", "NLLB-200")
    assert get_language("yor").require("nllb_code", "NLLB-200") == "yor_Latn"


def test_unknown_partition_lists_known_ones() -> None:
    with pytest.raises(UnsupportedLanguageError, match=r"unknown language partition 'xxx'.*yor"):
        get_language("xxx")
