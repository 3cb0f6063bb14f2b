"""``TabNNClassifier``: its parameters, how it reads X and y, and what it adds after training.

- ``classifier``: the estimator and its member-level API
- ``params``: parameter checks, the designs' recipes, training settings, loss weights
- ``frames``: X and y as the estimator reads them
- ``calibration``: temperature scaling and the expected calibration error
"""
