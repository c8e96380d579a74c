"""The svgrft command line: one module per command group, heavy imports inside functions."""
