"""Each user's personal skills: stored texts, versions, saved samples and their tests."""
