"""unmasklib: face mask removal with a 3D face prior (Yin, Huang & Chen, ICIP 2022)."""

__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 (module attribute hook)
    """`unmasklib.Unmasker` without importing torch for `import unmasklib` alone."""
    if name == "Unmasker":
        from .pipeline import Unmasker
        return Unmasker
    raise AttributeError(f"module 'unmasklib' has no attribute {name!r}")
