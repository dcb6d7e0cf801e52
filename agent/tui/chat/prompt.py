"""The prompt: a multi-line input with history and completion of /commands.

Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it) adds a line, Up on
the first line and Down on the last walk the history, Tab completes a command.
"""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from agent.tui.commands import complete


class PromptInput(TextArea):
    """The input line of the chat."""

    class Submitted(Message):
        """The person sent ``text``."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            soft_wrap=True, show_line_numbers=False, tab_behavior="focus", id=id
        )
        self.sent: list[str] = []
        self._recalled: int | None = None

    async def _on_key(self, event: events.Key) -> None:
        handled = self._handle(event.key)
        if handled:
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def _handle(self, key: str) -> bool:
        if key == "enter":
            self._submit()
        elif key in ("shift+enter", "ctrl+j"):
            self.insert("\n")
        elif key == "tab":
            return self._complete()
        elif key == "up" and self.cursor_location[0] == 0 and self.sent:
            self._recall(-1)
        elif key == "down" and self._recalled is not None and self._on_last_line():
            self._recall(+1)
        else:
            return False
        return True

    def _submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        if not self.sent or self.sent[-1] != text:
            self.sent.append(text)
        self._recalled = None
        self.clear()
        self.post_message(self.Submitted(text))

    def _complete(self) -> bool:
        completion = complete(self.text)
        if completion is None:
            return self.text.startswith("/")
        self.load_text(completion)
        self.move_cursor(self.document.end)
        return True

    def _recall(self, step: int) -> None:
        index = len(self.sent) if self._recalled is None else self._recalled
        index = max(0, index + step)
        if index >= len(self.sent):
            self._recalled = None
            self.load_text("")
            return
        self._recalled = index
        self.load_text(self.sent[index])
        self.move_cursor(self.document.end)

    def _on_last_line(self) -> bool:
        return self.cursor_location[0] == self.document.line_count - 1
