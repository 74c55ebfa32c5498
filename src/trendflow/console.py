"""What the CLI prints on stderr: messages as written (no rich markup eaten), one error format.

Error messages and hints quote patterns such as `[a-z0-9_]` and paths with brackets; rich would
read those as markup tags and drop them. Everything that is not our own markup is escaped here.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape


def print_error(console: Console, code: str, message: str, hint: str | None = None) -> None:
    """`error <code>: <message>` in red, then the hint; both shown exactly as written."""
    text = f"[red]error[/red] {escape(str(code))}: {escape(message)}"
    if hint:
        text += f"\n{escape(hint)}"
    console.print(text)


def print_plain(console: Console, message: str) -> None:
    console.print(message, markup=False, highlight=False)
