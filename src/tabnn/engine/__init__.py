"""The training engine: a stack of same-shaped members trained together.

``train.fit_stack`` is its entry point; ``config`` holds the plain data it takes and returns,
``inputs`` lays out the encoded table and each epoch's batches, ``steps`` the training steps
and the validation pass, ``optim`` the per-member optimiser and ``cpu`` the CPU policy.
"""
