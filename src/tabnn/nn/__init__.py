"""The networks: designs as users name them, the stacked MLP and the efficient ensemble
behind one interface (``TabularNetwork``), and what a configuration costs.

- ``designs``: ``default``, ``wide``, ``deep``, ``mlp:256-128``, parsed in one place, and
  which network a design trains
- ``config``: a network's configuration (``ModelConfig``) and ``build_config``, which sizes it
- ``mlp``: the input encoder, stacked layers and the plain MLP
- ``ensemble``: the default design's efficient ensemble, periodic and piecewise-linear
  numeric embeddings; ``build_network`` picks a network for a configuration
- ``network``: ``TabularNetwork``, the interface both networks implement: what the rest of
  tabnn may use of a network
- ``neighbours``: the nearest-neighbour member, by one matrix product over stored rows
- ``forward``: logits in blocks of rows, the float64 copy predictions run on, probabilities
- ``size``: parameters, multiply-adds and activations of a configuration, and whether it fits
- ``memory``: how much memory there is, sizes in words, out-of-memory wording
"""
