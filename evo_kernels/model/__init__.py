"""The data of the project: problems, candidates and evaluations, tunables, device kinds. Imports nothing of the project."""
