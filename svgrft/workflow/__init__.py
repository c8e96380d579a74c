"""Multi-step flows (dataset upload, jobs, train) built on clients and core."""
