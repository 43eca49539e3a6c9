"""Speed and memory: against peer libraries, against the code before a change, and how runs scale."""
