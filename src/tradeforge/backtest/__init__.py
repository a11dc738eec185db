"""tradeforge.backtest."""
