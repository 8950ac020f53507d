"""Single source of the package version (read by hatchling and at runtime)."""

__version__ = "2.0.0"
