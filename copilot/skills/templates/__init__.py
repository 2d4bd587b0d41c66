"""Skill templates: the `.prompty` format, its sandboxed rendering, techniques, built-ins."""
