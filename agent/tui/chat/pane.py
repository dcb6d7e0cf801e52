"""The chat pane: user messages, streamed answers with their thinking, notices.

Tool cards are mounted into the same pane by the app, in the order events arrive.
Everything here runs on the UI thread; the app forwards events from workers.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets.markdown import MarkdownStream


class UserMessage(Static):
    """What the person typed."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False, classes="user-message")


class NoticeLine(Static):
    """A line from netwarden itself: a notice, a limit, a command's output."""

    def __init__(self, text: str, *, kind: str = "notice") -> None:
        super().__init__(text, markup=False, classes=f"notice {kind}")


class AnswerBlock(Vertical):
    """One answer: thinking in a collapsed block, the answer streamed as Markdown."""

    def __init__(self) -> None:
        super().__init__(classes="answer-block")
        self.thinking = ""
        self.answer = ""
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        with Collapsible(title="thinking", collapsed=True, classes="thinking"):
            yield Static("", markup=False, classes="thinking-text")
        yield Markdown("", classes="answer")

    def on_mount(self) -> None:
        self.query_one(Collapsible).display = False

    def add_thinking(self, text: str) -> None:
        self.thinking += text
        self.query_one(Collapsible).display = True
        self.query_one(".thinking-text", Static).update(self.thinking)

    async def add_answer(self, text: str) -> None:
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        self.answer += text
        await self._stream.write(text)

    async def finish(self, final: str | None = None) -> None:
        """Stop streaming; show ``final`` if the streamed text was not the answer."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if final is not None and final.strip() and final.strip() != self.answer.strip():
            self.answer = final
            await self.query_one(Markdown).update(final)
        elif not self.answer.strip():
            await self.query_one(Markdown).update("*(no answer)*")


class ChatPane(VerticalScroll):
    """The conversation, newest at the bottom, following new content."""

    def on_mount(self) -> None:
        self.anchor()

    async def add(self, widget: Widget) -> Widget:
        await self.mount(widget)
        return widget

    async def clear(self) -> None:
        await self.remove_children()
