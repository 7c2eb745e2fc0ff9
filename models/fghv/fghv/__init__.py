"""FGHV (Liu et al., AAAI 2022) face anti-spoofing: networks, training, evaluation, export.

See ../../docs/fghv.md (the method as implemented), ../README.md (how to run it) and
../EXPERIMENTS.md (what it does, measured).
"""

__version__ = "0.1.0"
