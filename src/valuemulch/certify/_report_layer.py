"""The report's "Community layer" section: what a `stack` model pools, with which weights per
community (a heatmap), and, when cross-fitted, which layer answered which fold.

A weight is the share of the pool a backbone's calibrated answer gets; the per-community weights are
shrunk towards the shared ones, so a community whose row differs from the shared row is one the data
moved. Every cell also prints its number, so the heatmap reads without colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from valuemulch.certify._cert_values import _get, _num
from valuemulch.certify._html import _e, _table
from valuemulch.certify._plots import _clip, _plot, _svg, _text

SHORT = 44  # backbone labels are clipped to this many characters in the heatmap (full label on hover)
SHOWN = 10  # the heatmap's columns: the backbones with the largest mean weight, then one column for the rest
OTHERS = "all others"


def _shade(value: float) -> str:
    """White to Okabe-Ito blue (#0072B2) by weight in [0, 1]; dark text only on light cells."""
    v = min(max(value, 0.0), 1.0)
    r, g, b = (round(255 + (c - 255) * v) for c in (0x00, 0x72, 0xB2))
    return f"#{r:02x}{g:02x}{b:02x}"


def _short(backbone: str) -> str:
    """A recorded run's label without the ``recorded:`` prefix and ``@dataset`` suffix every one shares."""
    return _clip(backbone.removeprefix("recorded:").split("@")[0], SHORT)


def _heatmap(rows: Sequence[tuple[str, Mapping[str, float]]], backbones: Sequence[str], label: str) -> str:
    cell_w, cell_h = 84.0, 20.0
    left = min(240.0, 16 + 6.6 * max((len(c) for c, _ in rows), default=8))
    top = 30.0 + 3.6 * max((len(_short(b)) for b in backbones), default=8)
    parts = []
    for j, backbone in enumerate(backbones):
        x = left + cell_w * (j + 0.5)
        parts.append(
            _text(x, top - 8, _short(backbone), size=10, extra=f'transform="rotate(-35 {x:.1f} {top - 8:.1f})"', tip=backbone)
        )
    for i, (community, weights) in enumerate(rows):
        y = top + cell_h * i
        parts.append(_text(left - 8, y + 14, _clip(community, 34), anchor="end", tip=community))
        for j, backbone in enumerate(backbones):
            w = weights.get(OTHERS if backbone.startswith(OTHERS) else backbone)
            x = left + cell_w * j
            fill = "#f1f3f6" if w is None else _shade(w)
            title = f"{community} · {backbone}: {'—' if w is None else f'{w:.3f}'}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"><title>{_e(title)}</title></rect>'
            )
            ink = "#ffffff" if w is not None and w > 0.55 else "#1b1b1b"
            parts.append(_text(x + cell_w / 2 - 1, y + 14, "—" if w is None else f"{w:.2f}", anchor="middle", size=10, fill=ink))
    width = left + cell_w * len(backbones) + 60
    return _svg(width, top + cell_h * len(rows) + 10, label, "".join(parts))


def _community_rows(layers: Sequence[Mapping[str, Any]], communities: Sequence[str]) -> list[tuple[str, dict[str, float]]]:
    """Each community's weights, averaged over ``layers`` (one, or one per fold); a layer without
    per-community weights gives every community its shared ones."""
    rows = []
    for community in communities:
        sums: dict[str, float] = {}
        for layer in layers:
            weights = (layer.get("community_weights") or {}).get(community) or layer.get("weights") or {}
            for b, w in weights.items():
                sums[b] = sums.get(b, 0.0) + float(w) / len(layers)
        rows.append((community, sums))
    return rows


def _columns(rows: list[tuple[str, dict[str, float]]], backbones: Sequence[str]) -> tuple[list[tuple[str, dict[str, float]]], list[str]]:
    """At most ``SHOWN`` backbones by mean weight over the rows; the rest summed into one column."""
    if len(backbones) <= SHOWN + 1:
        return rows, list(backbones)
    mean = {b: sum(w.get(b, 0.0) for _, w in rows) / max(len(rows), 1) for b in backbones}
    shown = sorted(backbones, key=lambda b: (-mean[b], b))[:SHOWN]
    rest = [b for b in backbones if b not in shown]
    folded = [(c, {**{b: w[b] for b in shown if b in w}, OTHERS: sum(w.get(b, 0.0) for b in rest)}) for c, w in rows]
    return folded, [*shown, f"{OTHERS} ({len(rest)})"]


def _backbone_table(layer: Mapping[str, Any]) -> str:
    temperatures, weights = layer.get("temperatures") or {}, layer.get("weights") or {}
    return _table(
        ["backbone", "temperature", "shared weight"],
        (
            [f"<code>{_e(b)}</code>", f'<td class="num">{_num(temperatures.get(b))}</td>', f'<td class="num">{_num(weights.get(b))}</td>']
            for b in layer.get("backbones") or []
        ),
    )


def render_layer(cert: Mapping[str, Any]) -> str:
    layer = _get(cert, "model", "layer")
    cross = _get(cert, "evaluation", "cross_fit")
    if not isinstance(layer, Mapping):
        return f"<p>Not a community layer: policy <code>{_e(_get(cert, 'model', 'policy') or '—')}</code> answers on its own.</p>"
    communities = [str(c) for c in _get(cert, "model", "communities") or []]
    parts = [
        f"<p>The saved layer pools {len(layer.get('backbones') or [])} backbones; inner cross-validation chose "
        f"<code>{_e(layer.get('choice'))}</code>. Each backbone's answer is calibrated by its temperature, then pooled "
        "with its weight (an item a backbone does not answer is pooled over the others).</p>",
        _backbone_table(layer),
    ]
    if isinstance(cross, Mapping):
        folds = [f for f in cross.get("layers") or [] if isinstance(f, Mapping)]
        fold_of = cross.get("fold_of") or {}
        parts.insert(
            0,
            f'<p class="note"><strong>Cross-fitted.</strong> The test-split answers come from {len(folds)} layers: the '
            f"{len(fold_of)} test questions were split into {_e(cross.get('folds'))} folds by a hash of their text (seed "
            f"{_e(cross.get('seed'))}), and each fold was answered by a layer fitted on the other folds, every setting chosen "
            "by inner cross-validation inside them. The saved layer answers only the bounds probes.</p>",
        )
        names = sorted({b for f in folds for b in f.get("backbones") or []})
        head = ["", *(f'<th class="num">fold {k}</th>' for k in range(len(folds)))]
        lines = [
            ["questions", *(f'<td class="num">{sum(1 for v in fold_of.values() if v == k)}</td>' for k in range(len(folds)))],
            ["choice", *(f"<code>{_e(f.get('choice'))}</code>" for f in folds)],
            *(
                [f"<code>{_e(b)}</code>", *(f'<td class="num">{_num((f.get("weights") or {}).get(b))}</td>' for f in folds)]
                for b in names
            ),
        ]
        parts.append(f"<details><summary>The layer of each fold: its choice and shared weights</summary>{_table(head, lines)}</details>")
        rows, backbones = _community_rows(folds, communities), names
        caption = f"Each community's pooling weights, averaged over the {len(folds)} fold layers that answered its test questions."
    else:
        rows, backbones = _community_rows([layer], communities), list(layer.get("backbones") or [])
        caption = "Each community's pooling weights in the saved layer" + (
            "." if layer.get("community_weights") else ": inner CV kept one set of shared weights for every community."
        )
    rows, backbones = _columns(rows, backbones)
    if any(b.startswith(OTHERS) for b in backbones):
        caption += f" The {SHOWN} backbones with the largest mean weight are shown; the last column sums the rest."
    parts.append(_plot(_heatmap(rows, backbones, "Pooling weight of each backbone per community"), caption))
    return "".join(parts)
