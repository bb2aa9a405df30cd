"""Pieces every stage shares: stable ids, atomic writes, retry and rate limiting, the call cache,
redaction, accounting and pricing, the typed LLM requests, tokenizers, sentence splitting, the
``{variable_N}`` placeholder contract, the task category table, polite HTTP fetching and Markdown
report rendering.
"""
