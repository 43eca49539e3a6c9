"""What the scripts share: the photos they explain, the record they write, and how they compare maps and time runs."""
