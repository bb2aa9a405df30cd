"""Partitions, derived once from the language registry: adding a language is one registry entry."""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from instruct_global.languages import Language, get_language, language_keys

language_partitions = StaticPartitionsDefinition(language_keys())


def partition_language(partition_key: str) -> Language:
    return get_language(partition_key)
