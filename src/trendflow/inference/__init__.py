"""Inference: feature rows built by the dataset build, forecast models from the MLflow registry
or a bundle, predictions.json with intervals and TreeSHAP contributions (docs/training.md)."""
