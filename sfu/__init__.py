"""Selective forwarding unit on aiortc (Worker, Router, Transport, Producer, Consumer).

Lands with the SFU issue.
"""
