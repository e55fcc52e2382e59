"""dtctl serve: the Durable Task sidecar protocol (gRPC) over a dtctl hub."""
