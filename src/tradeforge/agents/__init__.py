"""tradeforge.agents."""
