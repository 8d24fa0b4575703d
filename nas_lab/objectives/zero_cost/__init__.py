"""Zero-cost (training-free) proxies: scores of an untrained network that rank archs without training.

``proxies`` defines the ``Proxy`` records registered under the ``nas_lab.proxies``
entry-point group and ``evaluate_proxy``; the computations live in modules named
by what they look at (``size``, ``activations``, ``gradients``, ``synflow``,
``entropic``), the input batches in ``inputs`` and the network surgery some
proxies need (no normalisation, ReLU activations) in ``networks``.
"""
