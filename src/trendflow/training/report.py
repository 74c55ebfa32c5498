"""The comparison table (markdown + JSON) and the self-contained HTML report of a training run.

The comparison is on the TEST rows, bucket `all`, one block per (target, horizon, split
scheme): each model and baseline with n, RMSE, MAE (log1p scale), Spearman and interval
coverage, plus the Spearman gain over Szabo-Huberman. The HTML report embeds its plots as
base64 PNGs (matplotlib), so the one file opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import numpy as np
import pandas as pd

from trendflow.dataset.schema import parse_duration
from trendflow.training.metrics import COVERAGE, METRICS

REFERENCE = "szabo_huberman"
_SHOW = [
    "target",
    "horizon",
    "split",
    "model",
    "n",
    *METRICS,
    COVERAGE,
    "spearman_gain_vs_sh",
    "rmse_gain_vs_sh",
]


def comparison_table(metrics: pd.DataFrame) -> pd.DataFrame:
    test = metrics[(metrics["eval_split"] == "test") & (metrics["bucket"] == "all")].copy()
    if test.empty:
        return pd.DataFrame(columns=_SHOW)
    ref = test[test["model"] == REFERENCE].set_index(["target", "horizon", "split"])
    idx = pd.MultiIndex.from_frame(test[["target", "horizon", "split"]])
    test["spearman_gain_vs_sh"] = test["spearman"].to_numpy() - ref["spearman"].reindex(idx).to_numpy()
    test["rmse_gain_vs_sh"] = ref["rmse"].reindex(idx).to_numpy() - test["rmse"].to_numpy()
    order = {"catboost": 0, "lightgbm": 1, "szabo_huberman": 2, "global_median": 3}
    test["_o"] = test["model"].map(order).fillna(9)
    test["_h"] = test["horizon"].map(lambda h: parse_duration(h).total_seconds())
    test = test.sort_values(["target", "_h", "split", "_o"], kind="mergesort")
    return test[_SHOW].reset_index(drop=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "-" if not math.isfinite(value) else f"{value:.4f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def verdicts(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (target, horizon, split): does the best model beat Szabo-Huberman's test Spearman?"""
    out = []
    for (target, horizon, split), group in table.groupby(["target", "horizon", "split"], sort=False):
        models = group[~group["model"].isin([REFERENCE, "global_median"])]
        ref = group[group["model"] == REFERENCE]["spearman"]
        if models.empty or ref.empty:
            continue
        best = models.loc[models["spearman"].fillna(-math.inf).idxmax()]
        ref_value = float(ref.iloc[0])
        out.append(
            {
                "target": target,
                "horizon": horizon,
                "split": split,
                "best_model": best["model"],
                "spearman": _none(best["spearman"]),
                "szabo_huberman_spearman": _none(ref_value),
                "beats_szabo_huberman": bool(
                    math.isfinite(best["spearman"])
                    and (not math.isfinite(ref_value) or best["spearman"] > ref_value)
                ),
            }
        )
    return out


def _none(value: Any) -> Any:
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return value


def comparison_markdown(table: pd.DataFrame, manifest: dict[str, Any], skipped: list[dict[str, str]]) -> str:
    lines = [
        "# Training run: test-split comparison",
        "",
        f"- dataset fingerprint: `{manifest.get('dataset_fingerprint', '?')}`",
        f"- training config digest: `{manifest.get('training_config_digest', '?')}`",
        f"- seed {manifest.get('seed')}, threads {manifest.get('threads')}, "
        f"git `{manifest.get('git', {}).get('commit')}`",
        "- metrics on the log1p(delta) scale; `spearman_gain_vs_sh` = Spearman minus Szabo-Huberman's;",
        "  `rmse_gain_vs_sh` = Szabo-Huberman's RMSE minus this RMSE (positive = better).",
        "",
        markdown_table(table) if not table.empty else "_no task had enough rows to train_",
        "",
    ]
    v = verdicts(table)
    if v:
        lines += ["## Best model vs Szabo-Huberman (Spearman)", "", markdown_table(pd.DataFrame(v)), ""]
    if skipped:
        lines += ["## Skipped tasks", "", markdown_table(pd.DataFrame(skipped)), ""]
    return "\n".join(lines)


def comparison_json(
    table: pd.DataFrame, manifest: dict[str, Any], skipped: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "dataset_fingerprint": manifest.get("dataset_fingerprint"),
        "training_config_digest": manifest.get("training_config_digest"),
        "rows": [{k: _none(v) for k, v in row.items()} for row in table.to_dict("records")],
        "verdicts": verdicts(table),
        "skipped": skipped,
    }


# -- HTML --------------------------------------------------------------------------------------
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _scatter(
    preds: pd.DataFrame, target: str, horizon: str, champions: dict[tuple[str, str, str], str]
) -> str:
    import matplotlib.pyplot as plt

    splits = sorted(preds["split"].unique())
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4.2), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        part = preds[preds["split"] == split]
        for model, color in (
            (champions.get((target, horizon, split)), "tab:blue"),
            (REFERENCE, "tab:orange"),
        ):
            rows = part[part["model"] == model]
            if model and not rows.empty:
                ax.scatter(rows["actual"], rows["predicted"], s=10, alpha=0.6, color=color, label=model)
        lo = float(np.nanmin(part[["actual", "predicted"]].to_numpy())) if len(part) else 0.0
        hi = float(np.nanmax(part[["actual", "predicted"]].to_numpy())) if len(part) else 1.0
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
        ax.set(
            title=f"{target} {horizon}, {split} split (test)",
            xlabel="actual log1p(delta)",
            ylabel="predicted",
        )
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _buckets(metrics: pd.DataFrame, target: str, horizon: str, bucket_order: list[str]) -> str:
    import matplotlib.pyplot as plt

    part = metrics[
        (metrics["target"] == target) & (metrics["horizon"] == horizon) & (metrics["eval_split"] == "test")
    ]
    part = part[(part["bucket"] != "all") & (part["n"] > 0)]
    splits = sorted(part["split"].unique())
    fig, axes = plt.subplots(len(splits), 2, figsize=(11, 3.4 * len(splits)), squeeze=False)
    models = sorted(part["model"].unique())
    buckets = [b for b in bucket_order if b in set(part["bucket"])]
    width = 0.8 / max(len(models), 1)
    for row, split in enumerate(splits):
        for col, metric in enumerate(("rmse", "spearman")):
            ax = axes[row][col]
            for i, model in enumerate(models):
                values = part[(part["split"] == split) & (part["model"] == model)].set_index("bucket")[metric]
                ys = [values.get(b, np.nan) for b in buckets]
                ax.bar(np.arange(len(buckets)) + i * width, ys, width, label=model)
            ax.set_xticks(
                np.arange(len(buckets)) + width * (len(models) - 1) / 2, buckets, rotation=20, fontsize=7
            )
            ax.set_title(f"{target} {horizon}, {split} split: test {metric} by age at snapshot1", fontsize=9)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _importance(values: dict[str, float], title: str, top: int = 15) -> str:
    import matplotlib.pyplot as plt

    items = sorted(values.items(), key=lambda kv: -kv[1])[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:green")
    ax.set(title=title, xlabel="importance (% of total)")
    ax.tick_params(axis="y", labelsize=7)
    return _png(fig)


def html_report(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    importances: dict[str, dict[str, float]],
    champions: dict[tuple[str, str, str], str],
    manifest: dict[str, Any],
    skipped: list[dict[str, str]],
    bucket_order: list[str],
) -> str:
    import matplotlib

    matplotlib.use("Agg")
    table = comparison_table(metrics)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>TrendFlow training report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}h2{margin-top:2em}</style>",
        "</head><body><h1>TrendFlow training report</h1>",
        f"<p>dataset fingerprint <code>{html.escape(str(manifest.get('dataset_fingerprint')))}</code>, "
        f"training config digest <code>{html.escape(str(manifest.get('training_config_digest')))}</code>, "
        f"git <code>{html.escape(str(manifest.get('git', {}).get('commit')))}</code>. "
        "Metrics on the log1p(delta) scale, test split.</p>",
        "<h2>Comparison with the baselines</h2>",
        table.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"),
    ]
    if skipped:
        parts += ["<h2>Skipped tasks</h2>", pd.DataFrame(skipped).to_html(index=False)]
    tasks = sorted(
        {(t, h) for t, h in zip(metrics["target"], metrics["horizon"], strict=True)},
        key=lambda th: (th[0], parse_duration(th[1]).total_seconds()),
    )
    for target, horizon in tasks:
        parts.append(f"<h2>{html.escape(target)} at {html.escape(horizon)}</h2>")
        part = predictions[(predictions["target"] == target) & (predictions["horizon"] == horizon)]
        if not part.empty:
            parts.append("<h3>Predicted vs actual (champion and Szabo-Huberman)</h3>")
            parts.append(_scatter(part, target, horizon, champions))
        parts.append("<h3>Metrics by age bucket</h3>")
        parts.append(_buckets(metrics, target, horizon, bucket_order))
        for key, values in sorted(importances.items()):
            if key.startswith(f"{target}__{horizon}__") and values:
                parts.append(f"<h3>Feature importance: {html.escape(key)}</h3>")
                parts.append(_importance(values, key))
    parts += [
        "<h2>Reproducibility manifest</h2>",
        f"<pre>{html.escape(_json(manifest))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, sort_keys=True, default=str)
