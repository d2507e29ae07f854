"""Everything that turns stored rows into statements: statistics (`stats`), per-cell and per-simulation
summaries (`summary`), the published-vs-reproduced verdicts (`published`), theory's predictions for a run
(`predictions`) and the findings (`findings`). It reads the store and returns data; the report, the explorer
and the command line only show what it computed."""
