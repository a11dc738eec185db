"""tradeforge.features."""
