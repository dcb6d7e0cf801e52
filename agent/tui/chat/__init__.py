"""The conversation: the chat pane's messages and the prompt input."""

from agent.tui.chat.pane import AnswerBlock, ChatPane, NoticeLine, UserMessage
from agent.tui.chat.prompt import PromptInput

__all__ = ["AnswerBlock", "ChatPane", "NoticeLine", "PromptInput", "UserMessage"]
