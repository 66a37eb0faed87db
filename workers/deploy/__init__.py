"""The deploy wing: plan a revision, prepare its containers, start them until ready, or undo."""
