"""Tables and plots: pure functions of store records (or of CSV exported from them); they never train."""
