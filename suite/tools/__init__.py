"""The tools that run the suite's pytest as a subprocess and read what it wrote: the fault matrix
(`python -m suite.tools.faultmatrix`), the soak (`scripts/soak`) and side by side
(`python -m suite.tools.sidebyside`). Each reads the behaviours from the registry
(`suite.behaviours`), none imports another; what they share is in `reading`."""
