"""Print a Markdown table (ACC ± std, BWT ± std, extra state per task, train time; and ECE,
task-inference accuracy and compression ratio where a results.json has them) from results.json files.

    python bench/results_table.py /tmp/mas_accuracy/final/*/results.json
"""

import json
import sys


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def main():
    for path in sys.argv[1:]:
        data = json.load(open(path))
        print(f"\n**{data['scenario']}** ({data['setting']}, seeds {data['seeds']})\n")
        runs = data["strategies"]
        # Columns that only some strategies report (HSF's), shown when any does.
        optional = [(key, title) for key, title in (("ece", "ECE"), ("task_inference_acc", "task inference"),
                                                    ("compression_ratio", "compression"))
                    if any(key in s for s in runs.values())]
        print("| strategy | hparams | ACC | BWT | state / task | train s/seed |"
              + "".join(f" {title} |" for _, title in optional))
        print("|---|---|---|---|---|---|" + "---|" * len(optional))
        for name, s in runs.items():
            hp = ", ".join(f"{k}={v}" for k, v in s["hparams"].items()
                           if k in ("lambda_reg", "ewc_lambda", "si_lambda", "mask_init", "alpha",
                                    "per_sample", "accumulate", "beta", "inference", "hnet_hidden",
                                    "latent_dim", "lr"))
            print(f"| {name} | {hp} | {100 * s['acc']:.1f} ± {100 * s['acc_std']:.1f} "
                  f"| {100 * s['bwt']:.1f} ± {100 * s['bwt_std']:.1f} "
                  f"| {human_bytes(s['extra_state_bytes_per_task'])} ({s['extra_state_bytes_per_task']:.0f} B) "
                  f"| {s['train_seconds']:.1f} |" + "".join(f" {_optional(key, s)} |" for key, _ in optional))


def _optional(key: str, s: dict) -> str:
    if key not in s:
        return "-"
    if key == "task_inference_acc":
        return f"{100 * s[key]:.1f}"
    return f"{s[key]:.3f}" if key == "ece" else f"{s[key]:.2f}"


if __name__ == "__main__":
    main()
