"""The comparison table (markdown + JSON) and the self-contained HTML report of a training run.

The comparison is on the TEST rows, bucket `all`, one block per (target, horizon, split
scheme): each model and baseline with n, RMSE, MAE (log1p scale), Spearman, their bootstrap
intervals and interval coverage, the gains over Szabo-Huberman, and `champion`: the algorithm
chosen on the VALIDATION rows, the one deployed. Verdicts judge the champion, never the
test-best model. The HTML report embeds its plots as base64 PNGs (matplotlib), so the one file
opens anywhere, offline.
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
from trendflow.training.metrics import COVERAGE, INTERVAL_COLUMNS, METRICS

REFERENCE = "szabo_huberman"
GOAL_SPEARMAN_GAIN = 0.05  # issue 11: champion Spearman >= Szabo-Huberman + 0.05, with lower MAE
SPLIT_ORDER = {"channel": 0, "time": 1, "walk_forward": 2}
MODEL_ORDER = {
    "catboost": 0,
    "lightgbm": 1,
    "catboost_sh": 2,
    "lightgbm_sh": 3,
    "catboost_sh_mono": 4,
    "lightgbm_sh_mono": 5,
    "lightgbm_sh_tuned": 6,
    "catboost_ep": 7,
    "lightgbm_ep": 8,
    "catboost_ep_mono": 9,
    "lightgbm_ep_mono": 10,
    "blend": 11,
    "early_popularity": 12,
    "szabo_huberman": 13,
    "global_median": 14,
}
_SHOW = [
    "target",
    "horizon",
    "split",
    "model",
    "champion",
    "n",
    *METRICS,
    *INTERVAL_COLUMNS,
    COVERAGE,
    "spearman_gain_vs_sh",
    "mae_gain_vs_sh",
    "rmse_gain_vs_sh",
]
# What every gain column means (shown under the tables of the markdown and HTML reports).
GAIN_NOTES = {
    "champion": "chosen on the VALIDATION rows by `selection_metric` (the deployed model); never by test",
    "spearman_low/high, mae_low/high": "seeded percentile-bootstrap interval over the test rows "
    "(`bootstrap.level`, `bootstrap.n` resamples)",
    "spearman_gain_vs_sh": "Spearman minus Szabo-Huberman's Spearman on the same rows (positive = better)",
    "mae_gain_vs_sh": "Szabo-Huberman's MAE minus this MAE (positive = better)",
    "rmse_gain_vs_sh": "Szabo-Huberman's RMSE minus this RMSE (positive = better)",
}


def horizon_seconds(label: str) -> float:
    return parse_duration(label).total_seconds()


def comparison_table(
    metrics: pd.DataFrame, champions: dict[tuple[str, str, str], str] | None = None
) -> pd.DataFrame:
    test = metrics[(metrics["eval_split"] == "test") & (metrics["bucket"] == "all")].copy()
    if test.empty:
        return pd.DataFrame(columns=_SHOW)
    champions = champions or {}
    ref = test[test["model"] == REFERENCE].set_index(["target", "horizon", "split"])
    idx = pd.MultiIndex.from_frame(test[["target", "horizon", "split"]])
    test["spearman_gain_vs_sh"] = test["spearman"].to_numpy() - ref["spearman"].reindex(idx).to_numpy()
    test["mae_gain_vs_sh"] = ref["mae"].reindex(idx).to_numpy() - test["mae"].to_numpy()
    test["rmse_gain_vs_sh"] = ref["rmse"].reindex(idx).to_numpy() - test["rmse"].to_numpy()
    test["champion"] = [
        champions.get((t, h, s)) == m
        for t, h, s, m in zip(test["target"], test["horizon"], test["split"], test["model"], strict=True)
    ]
    test["_o"] = test["model"].map(MODEL_ORDER).fillna(99)
    test["_s"] = test["split"].map(SPLIT_ORDER).fillna(9)
    test["_h"] = test["horizon"].map(horizon_seconds)
    test = test.sort_values(["target", "_h", "_s", "_o"], kind="mergesort")
    return test[_SHOW].reset_index(drop=True)


def censored_table(metrics: pd.DataFrame, champions: dict[tuple[str, str, str], str]) -> pd.DataFrame:
    """Test metrics of left-censored rows (already trending on an export's first day) apart from
    the others: the champion and Szabo-Huberman of every task (empty when no row is flagged)."""
    cols = ["target", "horizon", "split", "model", "bucket", "n", *METRICS]
    part = metrics[
        (metrics["eval_split"] == "test") & metrics["bucket"].isin(["left_censored", "not_left_censored"])
    ]
    keep = [
        m == REFERENCE or champions.get((t, h, sp)) == m
        for t, h, sp, m in zip(part["target"], part["horizon"], part["split"], part["model"], strict=True)
    ]
    part = part[keep].copy()
    if part.empty:
        return pd.DataFrame(columns=cols)
    part["_h"] = part["horizon"].map(horizon_seconds)
    part["_s"] = part["split"].map(SPLIT_ORDER).fillna(9)
    part["_o"] = part["model"].map(MODEL_ORDER).fillna(99)
    return part.sort_values(["target", "_h", "_s", "bucket", "_o"], kind="mergesort")[cols].reset_index(
        drop=True
    )


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
    """Per (target, horizon, split): does the CHAMPION (chosen on validation) beat
    Szabo-Huberman on the test rows, and does it meet the goal (+0.05 Spearman, lower MAE)?"""
    out = []
    for (target, horizon, split), group in table.groupby(["target", "horizon", "split"], sort=False):
        champ = group[group["champion"].astype(bool)]
        ref = group[group["model"] == REFERENCE]
        if champ.empty or ref.empty:
            continue
        c, r = champ.iloc[0], ref.iloc[0]
        rho, ref_rho = float(c["spearman"]), float(r["spearman"])
        gain = rho - ref_rho if math.isfinite(rho) and math.isfinite(ref_rho) else math.nan
        out.append(
            {
                "target": target,
                "horizon": horizon,
                "split": split,
                "champion": c["model"],
                "n": int(c["n"]),
                "spearman": _none(rho),
                "spearman_ci": [_none(c["spearman_low"]), _none(c["spearman_high"])],
                "mae": _none(c["mae"]),
                "mae_ci": [_none(c["mae_low"]), _none(c["mae_high"])],
                "szabo_huberman_spearman": _none(ref_rho),
                "szabo_huberman_mae": _none(r["mae"]),
                "spearman_gain_vs_sh": _none(gain),
                "beats_szabo_huberman": bool(
                    math.isfinite(rho) and (not math.isfinite(ref_rho) or rho > ref_rho)
                ),
                "meets_goal": bool(
                    math.isfinite(gain) and gain >= GOAL_SPEARMAN_GAIN and float(c["mae"]) < float(r["mae"])
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


def comparison_markdown(
    table: pd.DataFrame,
    manifest: dict[str, Any],
    skipped: list[dict[str, str]],
    censored: pd.DataFrame | None = None,
) -> str:
    lines = [
        "# Training run: test-split comparison",
        "",
        f"- dataset fingerprint: `{manifest.get('dataset_fingerprint', '?')}`",
        f"- training config digest: `{manifest.get('training_config_digest', '?')}`",
        f"- seed {manifest.get('seed')}, threads {manifest.get('threads')}, "
        f"git `{manifest.get('git', {}).get('commit')}`",
        "- metrics on the log1p(delta) scale, test rows (walk_forward: every fold's test rows pooled)",
        *[f"- `{k}`: {v}" for k, v in GAIN_NOTES.items()],
        "",
        markdown_table(table) if not table.empty else "_no task had enough rows to train_",
        "",
    ]
    v = verdicts(table)
    if v:
        lines += [
            "## Champion (chosen on validation) vs Szabo-Huberman",
            "",
            f"`meets_goal`: Spearman gain >= {GOAL_SPEARMAN_GAIN} and lower MAE than Szabo-Huberman.",
            "",
            markdown_table(pd.DataFrame(v)),
            "",
        ]
    if censored is not None and not censored.empty:
        lines += [
            "## Left-censored test rows apart (already trending on an export's first day)",
            "",
            markdown_table(censored),
            "",
        ]
    if skipped:
        lines += ["## Skipped tasks", "", markdown_table(pd.DataFrame(skipped)), ""]
    return "\n".join(lines)


def comparison_json(
    table: pd.DataFrame,
    manifest: dict[str, Any],
    skipped: list[dict[str, str]],
    censored: pd.DataFrame | None = None,
) -> dict[str, Any]:
    return {
        "dataset_fingerprint": manifest.get("dataset_fingerprint"),
        "training_config_digest": manifest.get("training_config_digest"),
        "rows": [{k: _none(v) for k, v in row.items()} for row in table.to_dict("records")],
        "verdicts": verdicts(table),
        "left_censored": [
            {k: _none(v) for k, v in row.items()}
            for row in (censored if censored is not None else pd.DataFrame()).to_dict("records")
        ],
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

    splits = sorted(preds["split"].unique(), key=lambda x: SPLIT_ORDER.get(x, 9))
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4.2), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        part = preds[preds["split"] == split]
        for model, color in (
            (champions.get((target, horizon, split)), "tab:blue"),
            (REFERENCE, "tab:orange"),
        ):
            rows = part[part["model"] == model]
            if model and not rows.empty:
                label = f"{model} (champion)" if model != REFERENCE else "szabo_huberman (baseline)"
                ax.scatter(rows["actual"], rows["predicted"], s=10, alpha=0.6, color=color, label=label)
        lo = float(np.nanmin(part[["actual", "predicted"]].to_numpy())) if len(part) else 0.0
        hi = float(np.nanmax(part[["actual", "predicted"]].to_numpy())) if len(part) else 1.0
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="perfect forecast")
        ax.set(
            title=f"{target} {horizon}, {split} split (test)",
            xlabel="actual log1p(delta)",
            ylabel="predicted",
        )
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _buckets(
    metrics: pd.DataFrame,
    target: str,
    horizon: str,
    bucket_order: list[str],
    champions: dict[tuple[str, str, str], str],
) -> str:
    """Champion and baselines per age bucket (buckets in increasing age), one row per split."""
    import matplotlib.pyplot as plt

    part = metrics[
        (metrics["target"] == target) & (metrics["horizon"] == horizon) & (metrics["eval_split"] == "test")
    ]
    part = part[part["bucket"].isin(bucket_order) & (part["n"] > 0)]
    splits = sorted(part["split"].unique(), key=lambda x: SPLIT_ORDER.get(x, 9))
    fig, axes = plt.subplots(max(len(splits), 1), 2, figsize=(11, 3.4 * max(len(splits), 1)), squeeze=False)
    buckets = [b for b in bucket_order if b in set(part["bucket"])]
    for row, split in enumerate(splits):
        champion = champions.get((target, horizon, split))
        models = [m for m in (champion, REFERENCE, "global_median") if m]
        width = 0.8 / len(models)
        for col, metric in enumerate(("mae", "spearman")):
            ax = axes[row][col]
            for i, model in enumerate(models):
                values = part[(part["split"] == split) & (part["model"] == model)].set_index("bucket")[metric]
                ys = [values.get(b, np.nan) for b in buckets]
                label = f"{model} (champion)" if model == champion else model
                ax.bar(np.arange(len(buckets)) + i * width, ys, width, label=label)
            ax.set_xticks(
                np.arange(len(buckets)) + width * (len(models) - 1) / 2, buckets, rotation=20, fontsize=7
            )
            ax.set(xlabel="video age at snapshot1", ylabel=f"test {metric}")
            ax.set_title(f"{target} {horizon}, {split} split: test {metric} by age at snapshot1", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _importance(values: dict[str, float], title: str, top: int = 15) -> str:
    import matplotlib.pyplot as plt

    items = sorted(values.items(), key=lambda kv: -kv[1])[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:green", label="importance")
    ax.legend(fontsize=7, loc="lower right")
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
    table = comparison_table(metrics, champions)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>TrendFlow training report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}h2{margin-top:2em}</style>",
        "</head><body><h1>TrendFlow training report</h1>",
        f"<p>dataset fingerprint <code>{html.escape(str(manifest.get('dataset_fingerprint')))}</code>, "
        f"training config digest <code>{html.escape(str(manifest.get('training_config_digest')))}</code>, "
        f"git <code>{html.escape(str(manifest.get('git', {}).get('commit')))}</code>. "
        "Metrics on the log1p(delta) scale, test rows (walk_forward: every fold's test rows pooled). "
        "Highlighted rows are the champions, chosen on the validation rows.</p>",
        "<h2>Comparison with the baselines</h2>",
        _html_table(table),
        "<ul>"
        + "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>" for k, v in GAIN_NOTES.items())
        + "</ul>",
    ]
    v = verdicts(table)
    if v:
        parts += ["<h2>Champion vs Szabo-Huberman</h2>", pd.DataFrame(v).to_html(index=False, na_rep="-")]
    censored = censored_table(metrics, champions)
    if not censored.empty:
        parts += [
            "<h2>Left-censored test rows apart</h2><p>Videos already trending on an export's first day: "
            "their snapshot1 is not their first appearance.</p>",
            censored.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"),
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
        parts.append(_buckets(metrics, target, horizon, bucket_order, champions))
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


def _html_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for row in table.itertuples(index=False):
        style = " style='background:#fff3b0;font-weight:bold'" if row.champion else ""
        cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
        body.append(f"<tr{style}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, sort_keys=True, default=str)
