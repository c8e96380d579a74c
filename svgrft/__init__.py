"""svgrft: reinforcement fine-tuning of SVG-drawing models on Fireworks AI."""

__version__ = "0.1.0"
