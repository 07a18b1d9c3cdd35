"""A permission check that ends after the app closed its screens (the user quit while
it ran) does not refresh the key hints of an app that has none: that raised in a
background task ("Task exception was never retrieved")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ScreenStackError

from ktriage.ui.screens.action_confirm import ActionsProvider


class _Service:
    def __init__(self) -> None:
        self.listeners: list[Callable[[], None]] = []

    def on_permissions(self, listener: Callable[[], None]) -> None:
        self.listeners.append(listener)


class _App:
    def __init__(self) -> None:
        self.screen_stack: list[Any] = []
        self.refreshed = 0

    def refresh_bindings(self) -> None:
        if not self.screen_stack:
            raise ScreenStackError("No screens on stack")
        self.refreshed += 1


def test_keys_refresh_only_while_the_app_has_screens() -> None:
    app, service = _App(), _Service()
    ActionsProvider(app, service)  # type: ignore[arg-type]
    refresh_keys = service.listeners[0]
    refresh_keys()  # quitting: no screens, nothing raised
    assert app.refreshed == 0
    app.screen_stack.append(object())
    refresh_keys()
    assert app.refreshed == 1
