"""Daily AI Insights: a self-hostable newsletter of new AI research papers."""

__version__ = "0.1.0"
