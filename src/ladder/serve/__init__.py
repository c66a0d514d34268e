"""Serving: artifacts over the Open Inference Protocol (REST and gRPC), with dynamic batching
and Prometheus metrics (`ladder serve`)."""
