"""tradeforge.risk."""
