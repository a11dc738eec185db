"""Domain model: instruments, ids, enums, orders, events, positions (grows with execution)."""
