"""unmasklib: face mask removal with a 3D face prior (Yin, Huang & Chen, ICIP 2022)."""

__version__ = "0.1.0"
