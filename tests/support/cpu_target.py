"""A plain CPU target file with no TensorRT: what a user's own x86 machine description looks like."""

CPU_TARGET = """
name = "plain-cpu"
kind = "cpu"
devices = ["cpu"]
default_device = "cpu"
backends = ["eager", "onnxruntime"]
"""
