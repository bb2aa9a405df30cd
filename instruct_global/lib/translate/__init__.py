"""The translate stage: placeholder-safe machine translation, output checks, filling translated
templates with the source records' values, and the human review round trip (sheet export, validated
return, stored edits by stable id).
"""
