"""tradeforge.envs."""
