"""The durabletask SDK's ``examples/custom_data_converter`` (MIT licensed, Microsoft), ported to dtctl.

``converter.py`` and ``workflows.py`` are the example's ``src/`` files with only the imports changed
(``durabletask.serialization`` -> ``dtctl.serialization``, ``durabletask.task`` -> ``dtctl.task``);
``app.py`` stands in for the SDK worker's registrations.
"""
