"""The curate stage: instruction backtranslation of human-written target-language text, self-curation
by a judge model, diversification, and the final instruction dataset with its card.
"""
