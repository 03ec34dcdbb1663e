"""The paper's experiments, each run end to end: train, measure, write the results, read them back, draw them.

- ``experiments.wine``: section 4.1 on Wine, Figure 3 and Theorem 2 (``python -m varhyper_mini wine``);
- ``experiments.metrics``: how close two trained posteriors are (D_KL, pruning-score distance, expected loss).

``study`` runs the MNIST and CIFAR-10 pruning studies of sections 4.2-4.4 (config, runner, results).
Nothing is imported with the package: ``from varhyper_mini.experiments import wine``.
"""
