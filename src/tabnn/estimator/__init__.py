"""``TabNNClassifier``: its parameters, how it reads X and y, and what it adds after training.

- ``classifier``: the estimator and its member-level API
- ``params``: parameter checks, the designs' recipes, training settings, loss weights
- ``threshold``: tuning a binary decision threshold on held-out rows and describing it
- ``calibration``: temperature scaling and the expected calibration error
"""
