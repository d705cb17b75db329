print("fn2e-run")
