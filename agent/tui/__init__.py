"""The Textual terminal app: a conversation with the assistant, tool cards, findings."""
