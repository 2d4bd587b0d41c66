"""Office files as skill output: Word documents with citations, scored Excel workbooks."""
