"""Live views of a running graph in Rerun and Foxglove."""
