"""What the op folders share (private): input preparation (:mod:`.inputs`), log-space helpers
(:mod:`.logspace`), Triton availability (:mod:`.triton_support`), custom-op dispatch
(:mod:`.op_support`) and the scans' tile choices, launcher and jitted loop bodies
(:mod:`.triton_scan`)."""
