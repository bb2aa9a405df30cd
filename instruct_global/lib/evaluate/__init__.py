"""The evaluate stage: TruthfulQA in the language, multiple-choice scoring and held-out loss, base
against fine-tuned.
"""
