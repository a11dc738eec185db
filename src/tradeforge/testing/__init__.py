"""tradeforge.testing."""
