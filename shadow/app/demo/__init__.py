"""The demo - the whole shadow pipeline on one machine, end to end, in about two minutes."""
