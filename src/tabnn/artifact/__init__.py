"""The model directory: saved as plain data, verified whole before use, rebuilt into an
estimator.

- ``directory``: versions, checksums, save and load
- ``rebuild``: tabnn.json's values checked, and the network rebuilt from its tensors
"""
