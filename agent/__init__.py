"""netwarden's front ends and (later) the model runtime and agent loop."""
