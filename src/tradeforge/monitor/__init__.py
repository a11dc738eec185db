"""tradeforge.monitor."""
