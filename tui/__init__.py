"""The diffusionscope workbench: a Textual front end over the headless CLI's run directories.

Nothing here computes a metric. Runs are child processes of ``python -m diffusionscope run``; the
app reads what they write (``events.jsonl``, ``results.json``, ``artifacts/``). Heavy imports
(torch, diffusers) happen only inside workers, so the app opens fast.
"""
