"""Prompt text shipped with netwarden (system prompts, tool descriptions)."""
