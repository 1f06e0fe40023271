"""LLM backends: chat messages in, text deltas out."""
