"""The generate stage: English skeleton instructions with ``{variable_N}`` placeholders (prompts,
parsing, quotas) and self-instruct bootstrapping with its heuristic filters and the exact ROUGE-L
novelty filter.
"""
