"""Studies of one question each: a paper's claim, a default, a stop rule or a precision, measured on real photos."""
