"""initscope: see what weight initialization does to a neural network."""

__version__ = "0.1.0"
