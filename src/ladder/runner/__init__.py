"""The run layer: one rung (data -> fitted, evaluated, packaged model) and the whole ladder
(every rung, cross-validation, compression, the leaderboard and report) over a run folder."""
