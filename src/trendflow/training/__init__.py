"""Training library: features from the table, CatBoost/LightGBM fits, baselines, metrics,
report, reproducibility manifest, model bundle and MLflow logging (docs/training.md)."""
