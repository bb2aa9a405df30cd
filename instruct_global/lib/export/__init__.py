"""The export stage: chat JSONL, Alpaca JSON, Parquet and Hugging Face dataset folders with their
splits and format checks.
"""
