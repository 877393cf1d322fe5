"""Scope panes and the screens built of them: main, compare, editing, training."""
