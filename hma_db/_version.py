"""The release number alone, so that inner modules can name it without importing the package face."""

__version__ = "0.2.0"
