"""The top floor - the `shadow` command (cli/) and the demo (demo/): they wire every stage.

Nothing below imports from here: the shared core, the stages (producers, consumers, analysis)
and the stand-in kit (shadow.kit) stand without it (tests/unit/test_layers.py).
"""
