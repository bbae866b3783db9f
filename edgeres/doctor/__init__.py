"""`edgeres doctor`: what a user runs first on a new machine (a Jetson, a GPU server, a laptop).

One check per line, PASS, FAIL or SKIP, and for every FAIL one line of advice. The CPU checks (the
install, onnxruntime, the shipped data, the temp folder) always run; the device checks (TensorRT, CUDA, the
GPU, tiny FP16 and INT8 engines against onnxruntime) run where TensorRT is installed and SKIP, naming why,
elsewhere. `checklist.STEPS` is the order and the prerequisites; `runner` runs them and never raises.
"""
