"""FGHV (Liu et al., AAAI 2022) face anti-spoofing: networks, training, evaluation, export.

See ../../shared/docs/fghv-method.md (the spec) and ../README.md (how to run it).
"""

__version__ = "0.1.0"
