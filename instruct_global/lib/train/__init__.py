"""The train stage: local LoRA/QLoRA fine-tuning and hosted fine-tuning jobs, resumable.
"""
