"""Collection: arXiv RSS, other feeds, fetching, storage, empty days, the collect command."""
