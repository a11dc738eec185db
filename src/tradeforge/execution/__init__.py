"""tradeforge.execution."""
