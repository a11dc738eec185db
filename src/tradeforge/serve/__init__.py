"""tradeforge.serve."""
