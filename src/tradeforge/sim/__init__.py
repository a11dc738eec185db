"""tradeforge.sim."""
