"""Textual's Footer without its slow leak.

Every time the bindings change (a key press that moves focus, a screen pushed or
popped) the Footer composes fresh FooterKey widgets, each bound to the footer's
`compact` reactive. Textual drops a watcher only when the watched value changes
(textual#6666), and `compact` never does here, so each old key stayed alive: about
700 widgets after 600 storm keys. Dropping the watchers of removed keys after each
recompose frees them.
"""

from __future__ import annotations

from textual.widgets import Footer


class KeyFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        self.drop_stale_watchers()

    def drop_stale_watchers(self) -> None:
        for watchers in getattr(self, "__watchers", {}).values():
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
