"""Pure Python, no Dagster: one package per pipeline stage, named as the asset groups.

``corpus``, ``generate``, ``translate``, ``curate``, ``export``, ``train`` and ``evaluate`` hold each
stage's logic; ``common`` holds what several stages share. Assets in ``instruct_global/assets/`` call
into these packages and stay thin.
"""
