"""Exporters of Sora models to other runtimes; `sora_hf.exporters.onnx` (needs the `onnx` extra) registers Sora
with Optimum's ONNX exporter and ONNX Runtime classes on import."""
