"""rpdash: operate RunPod serverless endpoints from a terminal."""

__version__ = "0.1.0"
