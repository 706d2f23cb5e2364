"""Static HTML: a unit over an excerpt, and the gallery of cells."""
