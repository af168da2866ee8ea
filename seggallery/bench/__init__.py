"""`python -m seggallery bench`: config.py (what to run), measure.py (timing and counting), model.py (one model,
optimised against plain), compare.py (the warm Compare), served.py (the Compare through the running app),
run.py (the whole run, plain data) and table.py (its text table)."""
