"""Multi-step flows (dataset upload, evaluator build, jobs, train, deploy, compare) built on clients and core."""
