"""The application on top of the library: scenario files and their loader, the registries of
strategies and benchmarks, the runner, run checkpoints, results, plots and the CLI.

Layers, each importing only those below it: `cli` -> `tune`, `sweep` -> `runner` (with `checkpoint`, `results`,
`plots`, `metrics`, `calibration`, `state_size`, `resources`) -> `scenario` -> the registries
`strategies` and `benchmarks` (with `models`) -> `spec`, `params`, `files` -> the library.
"""
