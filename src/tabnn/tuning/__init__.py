"""Hyperparameter search (``tabnn tune``): an Optuna study whose trials train as the
members of stacks. ``space`` defines what is searched, ``search`` runs the study, ``tune``
holds out the test rows, searches, refits the best and tests it once."""
