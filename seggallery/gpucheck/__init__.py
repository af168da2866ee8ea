"""`python -m seggallery.gpucheck` (or `make gpu-check`): the GPU path checked and measured in one command.

On a machine with a CUDA GPU and no network it writes random-weight checkpoints in the real formats for the
check's models (the tests' own fakes), runs the GPU tests (`pytest -m gpu`, tests/test_gpu.py), then the
benchmark on the GPU (plain against optimised, torch.compile on and off, the warm three- and five-model
Compares, batch throughput, peak memory, TFLOP/s against the datasheet peak), and writes every result and
log into one folder with a summary against the targets. Without CUDA it says so and exits 0; `--dry-run`
runs the same steps on the CPU at tiny sizes, in seconds, so that the check cannot rot where CI has no GPU.

plan.py (what runs, how big, in how much time), environment.py (hermetic caches, what is installed),
fakes.py (the checkpoints, in a subprocess), steps.py (each step a subprocess with its log and time limit),
summary.py (the results against the targets), run.py (the whole check), __main__.py (the command line).
"""
