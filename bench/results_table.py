"""Print a Markdown table (ACC ± std, BWT ± std, extra state per task, train time) from results.json files.

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
        print("| strategy | hparams | ACC | BWT | state / task | train s/seed |")
        print("|---|---|---|---|---|---|")
        for name, s in data["strategies"].items():
            hp = ", ".join(f"{k}={v}" for k, v in s["hparams"].items()
                           if k in ("lambda_reg", "ewc_lambda", "si_lambda", "mask_init", "alpha",
                                    "per_sample", "accumulate"))
            print(f"| {name} | {hp} | {100 * s['acc']:.1f} ± {100 * s['acc_std']:.1f} "
                  f"| {100 * s['bwt']:.1f} ± {100 * s['bwt_std']:.1f} "
                  f"| {human_bytes(s['extra_state_bytes_per_task'])} ({s['extra_state_bytes_per_task']:.0f} B) "
                  f"| {s['train_seconds']:.1f} |")


if __name__ == "__main__":
    main()
