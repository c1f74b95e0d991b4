"""Print the README's Markdown table from results.json files: ACC as mean ± sample std with its
95% t-interval and n, BWT, FWT (n/a where zero by construction), ECE and task inference where
present, trained parameters, stored bytes per task and training time.

    python bench/results_table.py bench/results/split_digits_til/results.json
"""

import json
import sys

from avalanche_hsf.lab.results import human_bytes

MASK = "mask_off"


def points(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def classification(data: dict) -> None:
    masked = any(r.get("mask_off") is not None for r in data["strategies"].values())  # a column only with masks
    print("| strategy | ACC (mean ± std) | 95% CI | n | BWT | FWT | ECE | task inf. | trained params | "
          "state / task |" + (" masked off |" if masked else "") + " time (s) |")
    print("|---" * (12 if masked else 11) + "|")
    for name, r in data["strategies"].items():
        low, high = r["acc_ci95"] or (None, None)
        interval = "-" if low is None else f"{100 * low:.1f}–{100 * high:.1f}"
        std = "-" if r["acc_std"] is None else f"{100 * r['acc_std']:.1f}"
        task = points(r["task_inference_acc"]) if "task_inference_acc" in r else "-"
        print(f"| {name} | {100 * r['acc']:.1f} ± {std} | {interval} | {r['n_seeds']} | {points(r['bwt'])} | "
              f"{points(r['fwt'])} | {r.get('ece', float('nan')):.3f} | {task} | {r['trained_parameters']:,} | "
              f"{human_bytes(r['extra_state_bytes_per_task'])} |"
              + (f" {'-' if r.get('mask_off') is None else f'{100 * r[MASK]:.1f}%'} |" if masked else "")
              + f" {r['train_seconds']:.1f} |")


def regression(data: dict) -> None:
    print("| strategy | avg MSE (mean ± std) | 95% CI | n | avg forgetting | task-0 forgetting | trained params | "
          "time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in data["strategies"].items():
        low, high = r["avg_mse_ci95"] or (None, None)
        interval = "-" if low is None else f"{low:.2e}–{high:.2e}"
        std = "-" if r["avg_mse_std"] is None else f"{r['avg_mse_std']:.2e}"
        print(f"| {name} | {r['avg_mse']:.2e} ± {std} | {interval} | {r['n_seeds']} | {r['avg_forgetting']:.2e} | "
              f"{r['forgetting'][0]:.2e} | {r['trained_parameters']:,} | {r['train_seconds']:.1f} |")


def main():
    for path in sys.argv[1:]:
        data = json.load(open(path))
        print(f"\n{data['scenario']} ({data['setting']}, {data['split']} stream, seeds {data['seeds']})\n")
        (regression if data["task"] == "regression" else classification)(data)


if __name__ == "__main__":
    main()
