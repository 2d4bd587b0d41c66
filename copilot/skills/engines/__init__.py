"""The engines a skill runs on, behind one ``Engine`` protocol."""
